#!/usr/bin/env bash
# Set up (once) and run the tests: ./scripts/test.sh [pytest arguments]
# Needs only Python 3.11: the tests start private PostgreSQL and Redis servers of their own
# (tests/servers.py) unless TEST_POSTGRES_URL / TEST_REDIS_URL name servers to use instead.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/bootstrap.sh" requirements-dev.txt
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
