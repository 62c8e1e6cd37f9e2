"""Normal behaviour: result kinds, streams, errors, input, output files, concurrency."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bot.worker.sandbox import Sandbox

from .conftest import TEST_LIMITS, assert_healthy, run


def test_result_kinds(sandbox: Sandbox) -> None:
    cases = {
        "return {'a': [1, 2.5, None], 'é': True}": ("json", {"a": [1, 2.5, None], "é": True}),
        "return 'héllo'": ("text", "héllo".encode()),
        "return b'\\x00\\xff'": ("bytes", b"\x00\xff"),
        "return None": ("none", b""),
        "return 7": ("json", 7),
    }
    for body, (kind, expected) in cases.items():
        result = run(sandbox, f"def run(input_path):\n    {body}\n")
        assert result.status == "succeeded", result
        assert result.result_kind == kind
        value = json.loads(result.result) if kind == "json" else result.result
        assert value == expected
        assert result.exit_code == 0
    raw = run(sandbox, "def run(p):\n    return {'s': 'é'}\n").result
    assert "é".encode() in raw  # ensure_ascii=False


def test_numpy_scalars_are_json(sandbox: Sandbox) -> None:
    code = "import numpy as np\ndef run(p):\n    return {'n': np.int64(3), 'f': np.float32(0.5)}\n"
    result = run(sandbox, code)
    assert result.status == "succeeded", result
    assert json.loads(result.result) == {"n": 3, "f": 0.5}


def test_stdout_and_stderr_are_separate(sandbox: Sandbox) -> None:
    code = "import sys\ndef run(p):\n    print('to out')\n    print('to err', file=sys.stderr)\n"
    result = run(sandbox, code)
    assert result.status == "succeeded"
    assert result.stdout == "to out\n"
    assert result.stderr == "to err\n"
    assert not (result.stdout_truncated or result.stderr_truncated)


def test_exception_is_reported_with_traceback_tail(sandbox: Sandbox) -> None:
    code = "def helper():\n    raise ValueError('bad value 42')\n\ndef run(p):\n    helper()\n"
    result = run(sandbox, code)
    assert result.status == "failed"
    assert result.error_type == "ValueError"
    assert result.error_message == "bad value 42"
    assert result.traceback_tail is not None
    assert "helper()" in result.traceback_tail
    assert "ValueError: bad value 42" in result.traceback_tail
    assert "runner.py" not in result.traceback_tail  # sandbox frames are not shown
    assert result.killed_reason is None


def test_import_time_errors_fail(sandbox: Sandbox) -> None:
    syntax = run(sandbox, "def run(p) return 1\n")
    assert (syntax.status, syntax.error_type) == ("failed", "SyntaxError")
    missing = run(sandbox, "import not_a_real_module_xyz\ndef run(p):\n    return 1\n")
    assert (missing.status, missing.error_type) == ("failed", "ModuleNotFoundError")
    no_run = run(sandbox, "x = 1\n")
    assert (no_run.status, no_run.error_type) == ("failed", "AttributeError")
    assert "run(input_path)" in (no_run.error_message or "")


def test_non_serialisable_result_fails_clearly(sandbox: Sandbox) -> None:
    result = run(sandbox, "def run(p):\n    return {1, 2}\n")
    assert result.status == "failed"
    assert result.error_type == "TypeError"
    assert "not JSON-serialisable" in (result.error_message or "")
    assert result.result == b""


def test_input_file_and_cwd(sandbox: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "upload.csv"
    source.write_text("a,b\n1,2\n3,4\n")
    code = (
        "import os\nimport pandas as pd\n"
        "def run(input_path):\n"
        "    df = pd.read_csv(input_path)\n"
        "    return {'cwd': sorted(os.listdir('.')), 'out': os.listdir('output'),\n"
        "            'name': os.path.basename(input_path), 'sum': int(df['a'].sum()),\n"
        "            'desc': df.describe().to_dict()}\n"
    )
    result = run(sandbox, code, input_path=source, input_name="../../sales data.csv")
    assert result.status == "succeeded", result
    value = json.loads(result.result)
    assert value["cwd"] == ["output", "sales data.csv"]
    assert value["out"] == []
    assert value["name"] == "sales data.csv"
    assert value["sum"] == 4
    assert value["desc"]["a"]["mean"] == 2.0


def test_generator_task_gets_none(sandbox: Sandbox) -> None:
    result = run(sandbox, "import os\ndef run(p):\n    return [p, os.listdir('.')]\n")
    assert json.loads(result.result) == [None, ["output"]]


def test_output_files_collected_and_symlinks_not_followed(sandbox: Sandbox) -> None:
    code = (
        "import os\n"
        "def run(p):\n"
        "    open('output/report.txt', 'w').write('hello')\n"
        "    os.makedirs('output/sub')\n"
        "    open('output/sub/data.bin', 'wb').write(b'\\x01' * 10)\n"
        "    os.symlink('/etc/passwd', 'output/passwd')\n"
        "    os.symlink('/etc', 'output/etcdir')\n"
        "    os.mkfifo('output/fifo')\n"
        "    open('output/too_big.bin', 'wb').write(b'x' * (70 * 1024))\n"
        "    open('not_output.txt', 'w').write('ignored')\n"
    )
    result = run(sandbox, code)
    assert result.status == "succeeded", result
    files = {f.name: f for f in result.output_files}
    assert set(files) == {"report.txt", "sub/data.bin"}
    assert files["report.txt"].content == b"hello"
    assert files["report.txt"].size == 5
    assert files["sub/data.bin"].content == b"\x01" * 10
    assert result.output_files_omitted == ("too_big.bin",)
    assert all(b"root:" not in f.content for f in result.output_files)
    assert_healthy(sandbox)


def test_output_dir_replaced_by_symlink_is_not_followed(sandbox: Sandbox) -> None:
    code = (
        "import os, shutil\ndef run(p):\n    os.rmdir('output')\n    os.symlink('/etc', 'output')\n"
    )
    result = run(sandbox, code)
    assert result.status == "succeeded"
    assert result.output_files == ()


def test_output_file_count_is_capped(sandbox: Sandbox) -> None:
    code = (
        "def run(p):\n    for i in range(30):\n        open(f'output/f{i:02}', 'w').write(str(i))\n"
    )
    result = run(sandbox, code)
    assert len(result.output_files) == 20
    assert len(result.output_files_omitted) == 10


def test_concurrent_runs_are_isolated(sandbox: Sandbox, tmp_path: Path) -> None:
    code = (
        "import os, time\n"
        "def run(input_path):\n"
        "    mine = open(input_path).read()\n"
        "    open('output/mine.txt', 'w').write(mine)\n"
        "    time.sleep(0.05)\n"
        "    seen = sorted(os.listdir('.')) + sorted(os.listdir('output'))\n"
        "    return {'mine': mine, 'seen': seen, 'back': open('output/mine.txt').read()}\n"
    )
    results: dict[int, object] = {}

    def worker(n: int) -> None:
        source = tmp_path / f"in{n}.txt"
        source.write_text(f"marker-{n}")
        for _ in range(3):
            res = run(sandbox, code, input_path=source, input_name="in.txt")
            assert res.status == "succeeded", res
            value = json.loads(res.result)
            assert value == {
                "mine": f"marker-{n}",
                "seen": ["in.txt", "output", "mine.txt"],
                "back": f"marker-{n}",
            }
            assert [f.content for f in res.output_files] == [f"marker-{n}".encode()]
        results[n] = True

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert_healthy(sandbox)


def test_input_over_limit_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (TEST_LIMITS.max_input_bytes + 1))
    with pytest.raises(ValueError, match="limit"):
        run(sandbox, "def run(p):\n    return 1\n", input_path=big)
    assert_healthy(sandbox)


def test_input_bytes_arrive_as_the_named_file(sandbox: Sandbox) -> None:
    """The worker hands a run's stored input over as bytes: they become the one file in the
    run's directory, under the (made safe) name, readable only there."""
    code = (
        "import os, stat\n"
        "def run(input_path):\n"
        "    mode = stat.S_IMODE(os.stat(input_path).st_mode)\n"
        "    return {'cwd': sorted(os.listdir('.')), 'name': os.path.basename(input_path),\n"
        "            'data': open(input_path, 'rb').read().hex(), 'mode': oct(mode)}\n"
    )
    data = b"a,b\n1,2\n\x00\xff"
    result = run(sandbox, code, input_data=data, input_name="../q3 figures.csv")
    assert result.status == "succeeded", result
    value = json.loads(result.result)
    assert value == {
        "cwd": ["output", "q3 figures.csv"],
        "name": "q3 figures.csv",
        "data": data.hex(),
        "mode": "0o600",
    }


def test_input_bytes_over_limit_are_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="limit"):
        run(
            sandbox,
            "def run(p):\n    return 1\n",
            input_data=b"x" * (TEST_LIMITS.max_input_bytes + 1),
            input_name="big.csv",
        )
    assert_healthy(sandbox)
