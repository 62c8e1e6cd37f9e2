#!/usr/bin/env bash
# Set up (once) and run Taskbot: ./scripts/run.sh [serve | migrate | task ... | ...]
# It stays in the folder you typed it in, so paths you give (--input notes.txt, --dir out) are
# relative to that folder; the project's .env and default SQLite database are found wherever
# you are (see load_settings in bot/env_files.py).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh" requirements.txt
# Hints the app prints name the command that works: this script, as you typed it.
export TASKBOT_COMMAND="${TASKBOT_COMMAND:-$0}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$root/.venv/bin/python" -m bot "$@"
