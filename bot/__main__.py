"""``python -m bot``: see ``bot.roles.cli``."""

import os
import signal
import sys

from bot.roles.cli import main

try:
    code = main()
    sys.stdout.flush()
except BrokenPipeError:
    # The reader went away (e.g. `| head -1`): not an error worth a traceback.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
except KeyboardInterrupt:
    # Ctrl-C: whatever was under way has cleaned up on the way out (a create marks its task
    # failed); a second Ctrl-C while exiting is ignored rather than shown as a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stderr.write("\ninterrupted\n")
    code = 130
raise SystemExit(code)
