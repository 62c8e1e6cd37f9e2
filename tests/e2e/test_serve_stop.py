"""``python -m bot serve`` stopped as a process manager stops it: SIGTERM to its pid."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.e2e.test_serve import ROOT, _serve_env, _wait_up, free_port


def test_sigterm_closes_everything_in_order_and_quietly(tmp_path: Path) -> None:
    """uvicorn raises SIGTERM again once it stopped serving; the web process must still tell
    its flow process to finish and close what it holds (nothing killed on the way, no
    leaked semaphores reported, nobody left running)."""
    env = _serve_env(tmp_path, f"http://127.0.0.1:{free_port()}/api/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_up(proc, f"http://127.0.0.1:{env['PORT']}")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # the flow process (and its sandbox zygotes)
        proc.send_signal(signal.SIGTERM)  # to the web process only
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "leaked" not in err, err
    lines = [line for line in err.splitlines() if "slack_bolt.App" not in line]
    assert len(lines) == 1 and lines[0].startswith("warning: Slack is unreachable"), err
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, alive
