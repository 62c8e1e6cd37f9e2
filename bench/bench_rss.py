"""Idle resident memory of the web process of ``python -m bot serve`` (the flow process and
its children not counted), against a bare Bolt ``AsyncApp`` on the same server in the same run,
on a migrated database.

Run: .venv/bin/python bench/bench_rss.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench.bench_ack import wait_up
from tests.fakes.slack_api import MockSlackAPI
from tests.servers import free_port

TARGET_MIB = 80


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def heavy_modules(pid: int) -> str:
    maps = Path(f"/proc/{pid}/maps").read_text()
    found = [name for name in ("pandas", "numpy", "celery", "openai") if f"/{name}/" in maps]
    return ", ".join(found) or "none"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    mock = MockSlackAPI().start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "rss-secret",
        "SLACK_API_URL": mock.api_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'rss.db'}",
        "API_TOKEN": "rss-api",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "LOG_LEVEL": "ERROR",
    }
    # Migrated first, as the release step does (and as every start after the first finds it):
    # a first start on an empty SQLite file upgrades it and so holds alembic too.
    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    ours_port, bare_port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], cwd=ROOT, env={**env, "PORT": str(ours_port)}
        ),
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_processes.py"),
                "bare",
                str(bare_port),
                "s",
                mock.api_url,
            ],
            cwd=ROOT,
            env=env,
        ),
    ]
    try:
        wait_up(f"http://127.0.0.1:{ours_port}/healthz")
        wait_up(f"http://127.0.0.1:{bare_port}/slack/events")
        time.sleep(2)  # idle: what the processes hold when nothing happens
        ours, bare = rss_mib(procs[0].pid), rss_mib(procs[1].pid)
        request = urllib.request.Request(
            f"http://127.0.0.1:{ours_port}/api/tasks", headers={"Authorization": "Bearer rss-api"}
        )
        with urllib.request.urlopen(request, timeout=10):
            pass  # the API has answered once: FastAPI and its models are in (built lazily)
        time.sleep(2)
        after_api = rss_mib(procs[0].pid)
        print("idle RSS of the web process (flow process not counted)")
        print(f"  bare AsyncApp on uvicorn:          {bare:6.1f} MiB")
        print(f"  Taskbot web process, idle:         {ours:6.1f} MiB  (target <= {TARGET_MIB} MiB)")
        print(f"  Taskbot web process, API used once:{after_api:6.1f} MiB")
        print(
            f"  ratio Taskbot/bare: {ours / bare:.2f}x idle, {after_api / bare:.2f}x after the "
            f"API; heavy modules mapped: {heavy_modules(procs[0].pid)}"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        mock.stop()


if __name__ == "__main__":
    main()
