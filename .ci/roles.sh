#!/usr/bin/env bash
# Every role starts from a venv built from requirements.txt ALONE (a production install, not
# the dev requirements): migrate, task, serve and worker, each in a few seconds.
#
# Offline: the venv is rebuilt only when requirements.txt changes, with
# `pip install --no-index --find-links .ci/wheels` (plus the machine's own find-links). Only when
# that wheelhouse lacks a pinned wheel is the package registry asked, once, by `pip download`
# into it (pip's cache makes that fast); after that, this runs with no network at all
# (`unshare -n` included).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
prod=.ci/prod-venv
wheels=.ci/wheels
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$prod/.stamp" 2>/dev/null || true)" != "$want" ]; then
  py=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
  rm -rf "$prod"
  "$py" -m venv "$prod"
  install() { "$prod/bin/pip" install --quiet --no-index --find-links "$wheels" -r requirements.txt; }
  if ! install 2>/dev/null; then
    mkdir -p "$wheels"
    .venv/bin/pip download --quiet --dest "$wheels" -r requirements.txt
    install
  fi
  echo "$want" >"$prod/.stamp"
fi

# The extras the roles use are installed as declared (celery[redis] -> kombu[redis]): pip only
# checks them when they are asked for by name.
"$prod/bin/python" - <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from packaging.requirements import Requirement

problems = []
for dist, extra in (("celery", "redis"), ("kombu", "redis")):
    for line in requires(dist) or []:
        req = Requirement(line)
        if req.marker is None or not req.marker.evaluate({"extra": extra}):
            continue
        try:
            found = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{dist}[{extra}] needs {req}: not installed")
            continue
        if not req.specifier.contains(found, prereleases=True):
            problems.append(f"{dist}[{extra}] needs {req}: {found} is installed")
if problems:
    sys.exit("roles: " + "; ".join(problems) + " (pin them in requirements.txt)")
PY

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done  # each stops its children
  rm -rf "$tmp"
}
trap cleanup EXIT
export PYTHONPATH="$root" DATABASE_URL="sqlite:///$tmp/roles.db" LOG_LEVEL=WARNING
bot() { (cd "$tmp" && "$root/$prod/bin/python" -m bot "$@"); }
# A role in the background: the subshell execs the role, so $! is the role itself and killing
# it stops the role (and the role its children).
bot_bg() { log=$1; shift; (cd "$tmp" && exec "$root/$prod/bin/python" -m bot "$@") >"$log" 2>&1 & }
fail() { echo "roles: $1" >&2; sed 's/^/  | /' "$2" >&2; exit 1; }
free_port() { "$prod/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bot migrate >"$tmp/migrate.log" 2>&1 || fail "migrate did not start" "$tmp/migrate.log"
bot task list >"$tmp/task.log" 2>&1 || fail "task list did not start" "$tmp/task.log"
grep -q "No tasks yet" "$tmp/task.log" || fail "task list said something else" "$tmp/task.log"

# serve: Slack unreachable (one warning), the API and /healthz served.
port=$(free_port)
SLACK_BOT_TOKEN=xoxb-roles SLACK_SIGNING_SECRET=roles SLACK_API_URL=http://127.0.0.1:9/api/ \
  API_TOKEN=roles PORT=$port OPENAI_BASE_URL=http://127.0.0.1:9/v1 \
  bot_bg "$tmp/serve.log" serve
pids+=($!)
"$prod/bin/python" - "$port" "${pids[-1]}" <<'PY' || fail "serve did not answer /healthz" "$tmp/serve.log"
import os, sys, time, urllib.error, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # 503 with a report is an answer too
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(1)
        time.sleep(0.2)
sys.exit(1)
PY
kill "${pids[-1]}"

# worker: the Celery worker with its Redis transport loaded (a closed port: it says it cannot
# connect and keeps trying, which is how it starts before its broker does).
TASK_QUEUE=celery CELERY_BROKER_URL="redis://127.0.0.1:$(free_port)/0" bot_bg "$tmp/worker.log" worker
pids+=($!)
for _ in $(seq 300); do
  grep -qs "Cannot connect to redis" "$tmp/worker.log" && break
  kill -0 "${pids[-1]}" 2>/dev/null || fail "worker exited" "$tmp/worker.log"
  sleep 0.1
done
grep -q "Cannot connect to redis" "$tmp/worker.log" || fail "worker did not reach its broker" "$tmp/worker.log"
grep -q "Traceback\|ModuleNotFoundError" "$tmp/worker.log" && fail "worker failed" "$tmp/worker.log"
echo "roles: migrate, task, serve and worker start from requirements.txt alone"
