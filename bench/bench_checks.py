"""What self-checks cost per create: sandbox time and model calls, against a create without
checks, measured in the same run (fake model answering at once, so only Taskbot's own cost
shows).

Run: .venv/bin/python bench/bench_checks.py [--creates 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.composition import build_services
from bot.config import Settings
from bot.services.checks import Check, CheckReport, CheckResult
from storage import migrate
from storage.db import make_engine
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

CODE = "import csv\n\ndef run(input_path):\n    with open(input_path, newline='') as f:\n        return [dict(r) for r in csv.DictReader(f)]\n"
CHECKS = [
    {
        "name": "check_reads_rows",
        "code": "def check_reads_rows():\n    open('a.csv', 'w').write('x,y\\n1,2\\n')\n    assert run('a.csv') == [{'x': '1', 'y': '2'}]\n",
    },
    {
        "name": "check_empty_file",
        "code": "def check_empty_file():\n    open('e.csv', 'w').write('')\n    assert run('e.csv') == []\n",
    },
    {
        "name": "check_header_only",
        "code": "def check_header_only():\n    open('h.csv', 'w').write('x,y\\n')\n    assert run('h.csv') == []\n",
    },
]


class NoChecks:
    """Baseline: every check 'passes' without running anything."""

    def run_checks(self, code: str, checks: list[Check]) -> CheckReport:
        return CheckReport(tuple(CheckResult(c.name, True) for c in checks), 0.0)


def creates(
    n: int, *, real_checks: bool, tmp: Path, fail_first: bool = False
) -> tuple[list[float], list[float], list[int]]:
    url = f"sqlite:///{tmp / f'checks-{real_checks}-{fail_first}.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    model = FakeCodeGenerator()
    services = build_services(
        Settings(database_url=url),
        engine=engine,
        generator=model,
        checker=None if real_checks else NoChecks(),
    )
    wall, sandbox, requests = [], [], []
    try:
        for i in range(n + 3):
            if fail_first:
                bad = [
                    {
                        "name": "check_reads_rows",
                        "code": "def check_reads_rows():\n    assert run is None\n",
                    }
                ]
                model.queue(answer_json(code=CODE, checks=bad))
            model.queue(answer_json(code=CODE, checks=CHECKS))
            start = time.perf_counter()
            detail = services.tasks.create(description=f"rows {i}", requested_by="b", source="cli")
            if i >= 3:  # the first creates start the sandbox
                wall.append(time.perf_counter() - start)
                sandbox.append(detail.version.check_seconds or 0.0)
                requests.append(detail.version.model_requests)
    finally:
        services.close()
    return wall, sandbox, requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-checks-"))
    base, _, base_req = creates(args.creates, real_checks=False, tmp=tmp)
    wall, box, req = creates(args.creates, real_checks=True, tmp=tmp)
    fixed, fixed_box, fixed_req = creates(
        args.creates // 2, real_checks=True, tmp=tmp, fail_first=True
    )
    ms = lambda v: statistics.median(v) * 1000  # noqa: E731
    print(
        f"create without running checks: median {ms(base):.1f} ms, model requests {statistics.mean(base_req):.0f}"
    )
    print(
        f"create with 3 checks in the sandbox: median {ms(wall):.1f} ms (sandbox {ms(box):.1f} ms), "
        f"model requests {statistics.mean(req):.0f}; ratio {ms(wall) / ms(base):.2f}x"
    )
    print(
        f"create whose first answer fails a check: median {ms(fixed):.1f} ms (sandbox {ms(fixed_box):.1f} ms "
        f"for the passing round), model requests {statistics.mean(fixed_req):.0f}"
    )


if __name__ == "__main__":
    main()
