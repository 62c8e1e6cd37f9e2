"""Attack: read secrets (environment, .env files, /proc, databases, other runs, leftovers)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from bot.worker.sandbox import Sandbox

from .conftest import APP_SECRET, Secrets, assert_healthy, run

READER = """
import json
def run(p):
    out = {}
    for path in PATHS:
        try:
            with open(path, "rb") as fh:
                out[path] = fh.read(200).decode("latin-1")
        except OSError as exc:
            out[path] = "DENIED " + type(exc).__name__
    return out
"""


def read_all(box: Sandbox, paths: list[str]) -> dict[str, str]:
    result = run(box, READER.replace("PATHS", repr(paths)))
    assert result.status == "succeeded", result
    outcome: dict[str, str] = json.loads(result.result)
    return outcome


def test_environment_is_empty_but_harmless(sandbox: Sandbox) -> None:
    result = run(sandbox, "import os\ndef run(p):\n    return dict(os.environ)\n")
    env = json.loads(result.result)
    allowed = {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "MPLCONFIGDIR"}
    allowed |= {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"}
    assert set(env) <= allowed, env
    assert APP_SECRET not in json.dumps(env)
    assert env["HOME"].endswith("/work") and env["TMPDIR"].endswith("/tmp")


def test_proc_environ_of_app_and_zygote_unreadable(sandbox: Sandbox) -> None:
    zygotes = [slot.proc.pid for slot in sandbox._slots if slot.proc is not None]
    paths = [f"/proc/{pid}/environ" for pid in [os.getpid(), *zygotes, 1]]
    paths += [f"/proc/{os.getpid()}/cmdline", "/proc/self/environ"]
    outcome = read_all(sandbox, paths)
    assert all(v.startswith("DENIED") for v in outcome.values()), outcome
    assert_healthy(sandbox)


def test_dotenv_and_database_files_unreadable(sandbox: Sandbox, planted_secrets: Secrets) -> None:
    paths = [str(p) for p in planted_secrets.paths()]
    paths += ["/work/main/.example.env", "/etc/shadow", "/etc/passwd", "/root/.bashrc"]
    outcome = read_all(sandbox, paths)
    assert all(v.startswith("DENIED") for v in outcome.values()), outcome
    assert planted_secrets.value not in json.dumps(outcome)
    assert_healthy(sandbox)


def test_cannot_list_or_write_outside_run_dir(sandbox: Sandbox, planted_secrets: Secrets) -> None:
    code = (
        "import os\n"
        "def run(p):\n"
        "    out = {}\n"
        "    for d in ['/tmp', '/dev/shm', '/', '/work', '/var/run/postgresql', '..', '../..']:\n"
        "        try:\n            out['ls ' + d] = os.listdir(d)\n"
        "        except OSError as e:\n            out['ls ' + d] = 'DENIED'\n"
        "    for f in ['/tmp/leak', '/dev/shm/leak', '/var/tmp/leak', '../../leak']:\n"
        "        try:\n            open(f, 'w').write('x')\n            out['w ' + f] = 'WROTE'\n"
        "        except OSError as e:\n            out['w ' + f] = 'DENIED'\n"
        "    return out\n"
    )
    result = run(sandbox, code)
    outcome = json.loads(result.result)
    parent_listing = outcome.pop("ls ..")  # the run's own dir: task.py, tmp/, work/
    assert sorted(parent_listing) == ["task.py", "tmp", "work"]
    assert all(v == "DENIED" for v in outcome.values()), outcome
    assert not Path("/tmp/leak").exists() and not Path("/dev/shm/leak").exists()
    assert_healthy(sandbox)


def test_other_runs_files_unreachable(sandbox: Sandbox, tmp_path: Path) -> None:
    """While run A holds a secret input and output, run B (other slot) hunts for them."""
    secret = "other-run-secret-" + os.urandom(6).hex()
    source = tmp_path / "victim.csv"
    source.write_text(secret)
    victim_code = (
        "import time\n"
        "def run(p):\n"
        "    open('output/copy.txt', 'w').write(open(p).read())\n"
        "    time.sleep(1.5)\n"
    )
    done: dict[str, object] = {}
    victim = threading.Thread(
        target=lambda: done.update(r=run(sandbox, victim_code, input_path=source))
    )
    victim.start()
    deadline = time.monotonic() + 5
    run_dirs: list[str] = []
    while not run_dirs and time.monotonic() < deadline:
        for slot in sandbox._slots:
            for entry in slot.host_slot_dir().glob("run-*"):
                if (entry / "work" / "output" / "copy.txt").exists():
                    zygote_view = f"{slot.config.slot_dir}/{entry.name}"
                    run_dirs += [zygote_view, str(entry)]
        time.sleep(0.01)
    assert run_dirs, "victim run dir not found"
    targets = []
    for base in run_dirs:
        targets += [f"{base}/work/victim.csv", f"{base}/work/output/copy.txt", f"{base}/task.py"]
    outcome = read_all(sandbox, targets)
    victim.join()
    assert all(v.startswith("DENIED") for v in outcome.values()), outcome
    assert secret not in json.dumps(outcome)
    assert [f.content for f in done["r"].output_files] == [secret.encode()]  # type: ignore[attr-defined]
    assert_healthy(sandbox)


def test_nothing_lingers_between_runs(sandbox: Sandbox, tmp_path: Path) -> None:
    """A run's data must not be visible to the next run in the same slot (memory or disk)."""
    secret = "lingering-" + os.urandom(6).hex()
    source = tmp_path / "in.txt"
    source.write_text(secret)
    for _ in range(2):  # once per slot
        writer = (
            "import os\n"
            "def run(p):\n"
            "    data = open(p).read()\n"
            "    for d in ['.', 'output', os.environ['TMPDIR']]:\n"
            "        open(os.path.join(d, 'keep.txt'), 'w').write(data)\n"
            "    globals()['KEEP'] = data\n"
        )
        assert run(sandbox, writer, input_path=source).status == "succeeded"
    hunter = (
        "import os, sys, gc\n"
        "def run(p):\n"
        "    hits = []\n"
        f"    needle = ''.join([{secret[:9]!r}, {secret[9:]!r}])  # not constant-folded\n"
        "    for d in ['.', 'output', os.environ['TMPDIR'], '..']:\n"
        "        hits += [f for f in os.listdir(d) if 'keep' in f]\n"
        "    for obj in gc.get_objects():\n"
        "        items = obj.values() if isinstance(obj, dict) else obj\n"
        "        if isinstance(obj, (dict, list, tuple)):\n"
        "            if any(isinstance(i, str) and needle in i for i in list(items)):\n"
        "                hits.append('memory')\n"
        "    return hits\n"
    )
    for _ in range(4):
        result = run(sandbox, hunter)
        assert json.loads(result.result) == [], result
    # Control: the hunter does find the secret when it is really in memory.
    control = hunter.replace("    hits = []\n", "    hits = []\n    KEEP = [open(p).read()]\n")
    found = run(sandbox, control, input_path=source)
    assert "memory" in json.loads(found.result), found


METADATA_PROBE = """
import os

def run(p):
    seen = {}
    for path in PATHS:
        try:
            info = os.stat(path)
            seen[path] = [info.st_size, info.st_uid, info.st_mtime]
        except OSError as exc:
            seen[path] = type(exc).__name__
    for pid in PIDS:  # is there such a host process, and whose is it?
        for name, probe in (
            ("stat", lambda: os.stat(f"/proc/{pid}")),
            ("kill0", lambda: os.kill(pid, 0)),
            ("priority", lambda: os.getpriority(os.PRIO_PROCESS, pid)),
            ("affinity", lambda: os.sched_getaffinity(pid)),
            ("pgid", lambda: os.getpgid(pid)),
        ):
            try:
                probe()
                seen[f"{name} {pid}"] = "VISIBLE"
            except OSError as exc:
                seen[f"{name} {pid}"] = type(exc).__name__
    return seen
"""


def test_no_metadata_of_host_files_or_processes(sandbox: Sandbox, planted_secrets: Secrets) -> None:
    repo = Path(__file__).resolve().parents[3]
    paths = [str(p) for p in planted_secrets.paths()]
    paths += [str(repo / "README.md"), str(repo / "bot" / "config.py"), "/etc/shadow"]
    pids = [os.getpid(), 1, *(s.proc.pid for s in sandbox._slots if s.proc is not None)]
    code = METADATA_PROBE.replace("PATHS", repr(paths)).replace("PIDS", repr(pids))
    result = run(sandbox, code)
    assert result.status == "succeeded", result
    seen = json.loads(result.result)
    for path in paths:
        assert seen[path] == "FileNotFoundError", (path, seen[path])
    for pid in pids:
        if pid == 1:
            continue  # inside the run's PID namespace, 1 is the run's own init
        for probe in ("stat", "kill0", "priority", "affinity", "pgid"):
            # Any answer but "no such process" (EPERM included) tells a host process exists.
            value = seen[f"{probe} {pid}"]
            assert value in ("ProcessLookupError", "FileNotFoundError"), (probe, pid, value)
    assert_healthy(sandbox)
