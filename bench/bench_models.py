"""What loose and strict model servers cost per create: model requests (counted by the fake
server, over real HTTP with the real openai client) and wall time, against a strict server
measured in the same run. Checks run in the real sandbox.

Run: .venv/bin/python bench/bench_models.py [--creates 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.composition import build_services
from bot.config import Settings
from bot.services.errors import ServiceError
from storage import migrate
from storage.db import make_engine
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer, answer_json, markdown_answer

CHECK = "def {name}():\n    open('s.txt', 'w').write('a\\nb\\n')\n    assert run('s.txt') == {{'lines': 2}}\n"
STRICT = answer_json(
    code=COUNT_LINES, checks=[{"name": "check_two", "code": CHECK.format(name="check_two")}]
)
MISNAMED = answer_json(
    code=COUNT_LINES, checks=[{"name": "probe_task", "code": CHECK.format(name="probe_task")}]
)
NO_CHECKS = answer_json(code=COUNT_LINES, checks=[])
MARKDOWN = markdown_answer(
    code=COUNT_LINES, checks=CHECK.format(name="check_two"), metadata_first=True
)


@dataclass(frozen=True)
class Case:
    name: str
    answer: str
    rejects: tuple[str, ...] = ()
    style: str = "openai"


CASES = (
    Case("strict (baseline)", STRICT),
    Case("misnamed checks", MISNAMED),
    Case("no checks", NO_CHECKS),
    Case("fenced markdown", MARKDOWN),
    Case("rejects json_schema", STRICT, ("json_schema",)),
    Case("rejects json_schema (vLLM)", STRICT, ("json_schema",), "vllm"),
    Case("rejects json_object too", MARKDOWN, ("json_schema", "json_object")),
    Case("no response_format at all", MARKDOWN, ("json_schema", "json_object"), "unknown_param"),
)


def measure(case: Case, n: int, tmp: Path) -> tuple[list[int], list[float], int]:
    server = FakeOpenAIServer(rejects=case.rejects, reject_style=case.style).start()
    url = f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    settings = Settings(
        database_url=url,
        openai_base_url=server.base_url,
        openai_api_key="sk-bench",
        openai_model=f"bench-{uuid.uuid4().hex[:8]}",
        openai_max_retries=0,
        openai_timeout=10,
    )
    services = build_services(settings, engine=engine)
    requests, wall, ready = [], [], 0
    try:
        for i in range(n):
            server.answers.clear()
            for _ in range(3):
                server.reply(case.answer)
            before = len(server.requests)
            start = time.perf_counter()
            try:
                detail = services.tasks.create(
                    description=f"count lines {i}", requested_by="b", source="cli"
                )
                ready += detail.task.state == "ready"
            except ServiceError:
                pass
            wall.append(time.perf_counter() - start)
            requests.append(len(server.requests) - before)
    finally:
        services.close()
        server.stop()
    return requests, wall, ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-models-"))
    measure(CASES[0], 2, tmp)  # warm the sandbox and the imports
    rows = [(case, *measure(case, args.creates, tmp)) for case in CASES]
    base = statistics.median(rows[0][2][1:] or rows[0][2])
    print(f"{args.creates} creates per server kind; requests counted by the fake server")
    print(f"{'server / answer':<28} | ready | 1st create | later creates | median ms | vs strict")
    for case, requests, wall, ready in rows:
        later = requests[1:] or requests
        median = statistics.median(wall[1:] or wall)
        print(
            f"{case.name:<28} | {ready:>2}/{len(requests):<2} | {requests[0]:>3} req    | "
            f"{statistics.mean(later):>5.2f} req     | {median * 1000:>8.1f}  | {median / base:.2f}x"
        )


if __name__ == "__main__":
    main()
