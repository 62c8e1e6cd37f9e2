#!/usr/bin/env bash
# Set up (once) and run Taskbot: ./scripts/run.sh [serve | migrate | task ... | ...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh" requirements.txt
cd "$root"
exec "$root/.venv/bin/python" -m bot "$@"
