#!/usr/bin/env bash
# Create or reuse .venv and install the requirements when they changed. Sourced by run.sh/test.sh.
# Usage: scripts/bootstrap.sh [requirements file]   (default: requirements.txt)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req=${1:-requirements.txt}
venv="$root/.venv"

pick_python() {
  # A system interpreter first: the sandbox's unprivileged user must be able to execute it,
  # which rules out one under /root (pyenv) and is faster than a shim.
  for candidate in "${PYTHON:-}" /usr/bin/python3.11 /usr/local/bin/python3.11 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py=$(pick_python)
  echo "creating $venv with $py" >&2
  "$py" -m venv "$venv" || { echo "python venv failed: on Debian, apt-get install python3-venv" >&2; exit 1; }
fi
stamp="$venv/.installed-$(basename "$req")"
want=$(cat "$root/requirements.txt" "$root/$req" | sha256sum | cut -d' ' -f1)
# requirements-dev.txt includes requirements.txt: when it is installed and current, so is this.
dev_stamp="$venv/.installed-requirements-dev.txt"
dev_want=$(cat "$root/requirements.txt" "$root/requirements-dev.txt" | sha256sum | cut -d' ' -f1)
if [ "$req" = requirements.txt ] && [ -f "$dev_stamp" ] && [ "$(cat "$dev_stamp")" = "$dev_want" ]; then
  exit 0
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing $req into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/$req" >&2
  echo "$want" >"$stamp"
fi
