"""``python -m bot``: see ``bot.cli``."""

import os
import sys

from bot.cli import main

try:
    code = main()
    sys.stdout.flush()
except BrokenPipeError:
    # The reader went away (e.g. `| head -1`): not an error worth a traceback.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
raise SystemExit(code)
