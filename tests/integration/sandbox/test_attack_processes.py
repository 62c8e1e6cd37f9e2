"""Attack: signal or ptrace the app/worker, fork bombs, and processes left behind."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from bot.worker.sandbox import Sandbox

from .conftest import assert_healthy, processes_of, run, slot_uids


def test_cannot_signal_or_ptrace_app_or_zygote(sandbox: Sandbox) -> None:
    zygotes = [slot.proc.pid for slot in sandbox._slots if slot.proc is not None]
    targets = [os.getpid(), *zygotes, 1]
    code = (
        "import ctypes, os, signal\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def run(p):\n"
        "    out = {}\n"
        f"    for pid in {targets!r}:\n"
        "        try:\n            os.kill(pid, signal.SIGTERM)\n            out[f'kill {pid}'] = 'SENT'\n"
        "        except OSError as e:\n            out[f'kill {pid}'] = type(e).__name__\n"
        "        out[f'ptrace {pid}'] = libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH\n"
        "    try:\n        os.kill(-1, signal.SIGKILL)\n    except OSError:\n        pass\n"
        "    return out\n"
    )
    result = run(sandbox, code)
    # kill(-1) reaches nothing outside the run: the app (this test) and the zygotes live on.
    assert result.status == "succeeded", result
    outcome = json.loads(result.result)
    kills = {k: v for k, v in outcome.items() if k.startswith("kill")}
    # Refused, or (in the run's PID namespace) no such process there at all.
    assert set(kills.values()) <= {"PermissionError", "ProcessLookupError"}, outcome
    assert all(v == -1 for k, v in outcome.items() if k.startswith("ptrace")), outcome
    for pid in zygotes:
        assert Path(f"/proc/{pid}").exists()
    assert_healthy(sandbox)


def test_signals_are_refused_one_by_one(sandbox: Sandbox) -> None:
    code = f"import os, signal\ndef run(p):\n    os.kill({os.getpid()}, signal.SIGTERM)\n"
    result = run(sandbox, code)
    assert result.status == "failed"
    assert result.error_type in ("PermissionError", "ProcessLookupError")
    assert_healthy(sandbox)


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    code = "import os\ndef run(p):\n    while True:\n        os.fork()\n"
    started = time.monotonic()
    result = run(sandbox, code)
    assert result.status == "killed", result
    assert result.killed_reason == "processes"
    assert time.monotonic() - started < 5
    assert_healthy(sandbox)


def test_persistent_fork_bomb_times_out_and_is_cleaned(sandbox: Sandbox) -> None:
    code = (
        "import os, time\n"
        "def run(p):\n"
        "    while True:\n"
        "        try:\n            os.fork()\n"
        "        except OSError:\n            time.sleep(0.01)\n"
    )
    from bot.worker.sandbox import SandboxLimits

    result = run(sandbox, code, limits=SandboxLimits(wall_seconds=1.5, max_processes=8))
    assert result.status == "timed_out"
    assert_healthy(sandbox)


def test_setsid_double_forked_daemon_is_killed(sandbox: Sandbox) -> None:
    code = (
        "import os, time\n"
        "def run(p):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            signal_ignore = __import__('signal')\n"
        "            for s in (signal_ignore.SIGTERM, signal_ignore.SIGHUP):\n"
        "                signal_ignore.signal(s, signal_ignore.SIG_IGN)\n"
        "            while True:\n"
        "                time.sleep(0.05)\n"
        "                try:\n"
        "                    open('daemon-was-here', 'w').write('x')\n"
        "                except OSError:\n"
        "                    pass\n"
        "        os._exit(0)\n"
        "    time.sleep(0.2)\n"
        "    return 'parent done'\n"
    )
    result = run(sandbox, code)
    assert (result.status, result.result) == ("succeeded", b"parent done")
    assert processes_of(slot_uids(sandbox)) == []
    # Runs in every slot since (the barrier): a daemon that survived would show now.
    assert_healthy(sandbox)
    assert processes_of(slot_uids(sandbox)) == []


def test_killing_own_process_reports_signal(sandbox: Sandbox) -> None:
    result = run(
        sandbox, "import os, signal\ndef run(p):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert result.status == "killed"
    assert result.killed_reason == "signal SIGKILL"
    assert result.exit_code == -signal.SIGKILL
    assert_healthy(sandbox)


def test_exit_without_result(sandbox: Sandbox) -> None:
    result = run(sandbox, "import os\ndef run(p):\n    print('bye', flush=True)\n    os._exit(3)\n")
    assert (result.status, result.error_type, result.exit_code) == ("failed", "NoResult", 3)
    assert result.stdout == "bye\n"


def test_no_program_can_be_executed(sandbox: Sandbox) -> None:
    code = (
        "import os, sys\n"
        "def run(p):\n"
        "    out = {}\n"
        "    open('tool', 'w').write('#!/bin/sh\\ntrue\\n')\n"
        "    os.chmod('tool', 0o755)\n"
        "    for prog in ['/bin/sh', '/usr/bin/su', sys.executable, './tool']:\n"
        "        try:\n"
        "            os.execv(prog, [prog, '-c', 'true'])\n"
        "        except OSError as exc:\n"
        "            out[prog] = type(exc).__name__\n"
        "    return out\n"
    )
    result = run(sandbox, code)
    assert result.status == "succeeded", result
    # Refused, or not there at all (the run's mount view has no /bin, no interpreter binary).
    refused = {"PermissionError", "FileNotFoundError"}
    assert set(json.loads(result.result).values()) <= refused, result.result
    assert_healthy(sandbox)
