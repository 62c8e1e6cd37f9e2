#!/usr/bin/env bash
# Set up (once) and run the tests: ./scripts/test.sh [pytest arguments]
# Needs PostgreSQL on 127.0.0.1:5432 (database "test", trust auth) and Redis on 6379;
# .ci/run starts them when they are down.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh" requirements-dev.txt
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
