"""The web process of ``serve`` builds its services (and loads the ORM under them) on first use:
Slack's acks and /healthz need only the settings and the engine (bench/bench_rss.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from bot.config import Settings
from bot.roles.web import build_server

HEAVY = ("sqlalchemy.orm", "storage.models", "bot.services.container", "bot.composition")
s = Settings(
    slack_bot_token="xoxb-x",
    slack_signing_secret="s",
    slack_api_url="http://127.0.0.1:9/api/",
    database_url=sys.argv[1],
    api_token="t",
    sandbox_insecure=True,
)
server = build_server(s, flow_process=True)
try:
    health = server.web.app.health()  # the app behind the edge limits
    idle = [m for m in HEAVY if m in sys.modules]
    tasks = server.services().tasks.list(limit=1)  # first use: built now
    print(health["database"], health["queue"], idle, tasks, [m for m in HEAVY if m in sys.modules])
finally:
    server.close()
"""


def test_the_web_process_builds_its_services_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idle.db'}"
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    # Migrated in a process of its own, as the release step does: alembic is not the web's.
    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env, check=True, timeout=120
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    heavy = "['sqlalchemy.orm', 'storage.models', 'bot.services.container', 'bot.composition']"
    assert done.stdout.strip().splitlines()[-1] == f"ok ok [] [] {heavy}"
