"""Attack: exceed the limits (memory, CPU, wall time, file size, scratch space, output)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

from bot.worker.sandbox import Sandbox, SandboxLimits

from .conftest import TEST_LIMITS, assert_healthy, run


def test_memory_balloon_is_killed(sandbox: Sandbox) -> None:
    code = "def run(p):\n    hog = []\n    while True:\n        hog.append(bytearray(8 * 2**20))\n"
    result = run(sandbox, code)
    assert result.status == "killed", result
    assert result.killed_reason == "memory"
    assert_healthy(sandbox)


def test_single_huge_allocation_is_refused(sandbox: Sandbox) -> None:
    result = run(sandbox, "def run(p):\n    return len(bytearray(8 * 2**30))\n")
    assert (result.status, result.killed_reason) == ("killed", "memory")
    assert_healthy(sandbox)


def test_numpy_within_limit_works(sandbox: Sandbox) -> None:
    code = (
        "import numpy as np\ndef run(p):\n    a = np.ones(10_000_000)\n    return float(a.sum())\n"
    )
    result = run(sandbox, code)
    assert (result.status, json.loads(result.result)) == ("succeeded", 10_000_000.0)


def test_cpu_loop_is_killed(sandbox: Sandbox) -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=10)
    started = time.monotonic()
    result = run(sandbox, "def run(p):\n    while True:\n        pass\n", limits=limits)
    assert (result.status, result.killed_reason) == ("killed", "cpu")
    assert time.monotonic() - started < 5
    assert_healthy(sandbox)


def test_cpu_limit_counts_all_processes_of_a_run(sandbox: Sandbox) -> None:
    """Four children, each under the per-process limit, together far over the run's."""
    code = (
        "import os\n"
        "def run(p):\n"
        "    children = []\n"
        "    for _ in range(4):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            while True:\n"
        "                pass\n"
        "        children.append(pid)\n"
        "    for pid in children:\n"
        "        os.waitpid(pid, 0)\n"
        "    return 'all children used their CPU time'\n"
    )
    limits = replace(TEST_LIMITS, cpu_seconds=2, wall_seconds=20.0)
    result = run(sandbox, code, limits=limits)
    assert (result.status, result.killed_reason) == ("killed", "cpu"), result
    # 2 s of CPU over all processes: on N cores that is about 2/N s of wall time, not 2 s * 4.
    assert result.duration_seconds < 6.0, result.duration_seconds
    assert_healthy(sandbox)


def test_sleeping_past_wall_time_times_out(sandbox: Sandbox) -> None:
    limits = SandboxLimits(wall_seconds=1.0)
    started = time.monotonic()
    result = run(sandbox, "import time\ndef run(p):\n    time.sleep(60)\n", limits=limits)
    elapsed = time.monotonic() - started
    assert (result.status, result.killed_reason) == ("timed_out", "wall_time")
    assert 1.0 <= elapsed < 2.5
    assert_healthy(sandbox)


def test_large_file_is_killed(sandbox: Sandbox) -> None:
    code = (
        "def run(p):\n    with open('big.bin', 'wb') as fh:\n"
        "        while True:\n            fh.write(b'x' * 2**20)\n"
    )
    result = run(sandbox, code)
    assert (result.status, result.killed_reason) == ("killed", "file_size")
    assert_healthy(sandbox)


def test_filling_scratch_space_is_bounded(sandbox: Sandbox) -> None:
    code = (
        "import errno, os\n"
        "def run(p):\n"
        "    written = 0\n"
        "    try:\n"
        "        for i in range(1000):\n"
        "            with open(os.path.join(os.environ['TMPDIR'], f'f{i}'), 'wb') as fh:\n"
        "                for _ in range(8):\n"
        "                    fh.write(b'x' * 2**20)\n"
        "                    written += 2**20\n"
        "    except OSError as exc:\n"
        "        return {'written': written, 'errno': exc.errno}\n"
        "    return {'written': written, 'errno': None}\n"
    )
    result = run(sandbox, code)
    scratch = TEST_LIMITS.memory_bytes + TEST_LIMITS.max_input_bytes
    if result.status == "succeeded":
        outcome = json.loads(result.result)
        assert outcome["errno"] == 28, outcome  # ENOSPC
        assert outcome["written"] <= scratch
    else:
        assert (result.status, result.killed_reason) == ("killed", "memory")
    assert_healthy(sandbox)
    for slot in sandbox._slots:  # the space is given back
        stats = os.statvfs(slot.host_slot_dir())
        assert stats.f_bfree * stats.f_frsize > scratch * 0.9


def test_many_small_files_are_bounded(sandbox: Sandbox) -> None:
    code = (
        "def run(p):\n    n = 0\n    try:\n        while n < 10**6:\n"
        "            open(f'f{n}', 'w').close()\n            n += 1\n"
        "    except OSError as exc:\n        return [n, exc.errno]\n"
    )
    result = run(sandbox, code, limits=SandboxLimits(wall_seconds=20))
    created, err = json.loads(result.result)
    assert err == 28 and created < 20_000
    assert_healthy(sandbox)


def test_stdout_flood_is_capped_and_killed(sandbox: Sandbox) -> None:
    code = "import sys\ndef run(p):\n    while True:\n        sys.stdout.write('A' * 4096)\n"
    result = run(sandbox, code)
    assert (result.status, result.killed_reason) == ("killed", "output")
    assert result.stdout_truncated
    assert len(result.stdout) == TEST_LIMITS.stream_bytes
    assert_healthy(sandbox)


def test_stderr_flood_is_capped_and_killed(sandbox: Sandbox) -> None:
    code = "import os\ndef run(p):\n    while True:\n        os.write(2, b'E' * 65536)\n"
    result = run(sandbox, code)
    assert (result.status, result.killed_reason) == ("killed", "output")
    assert result.stderr_truncated and len(result.stderr) == TEST_LIMITS.stream_bytes
    assert_healthy(sandbox)


def test_moderate_output_is_truncated_not_killed(sandbox: Sandbox) -> None:
    code = "def run(p):\n    print('x' * (2 * 64 * 1024))\n    return 'fine'\n"
    result = run(sandbox, code)
    assert (result.status, result.result) == ("succeeded", b"fine")
    assert result.stdout_truncated and len(result.stdout) == TEST_LIMITS.stream_bytes


def test_large_result_is_truncated(sandbox: Sandbox) -> None:
    result = run(sandbox, "def run(p):\n    return 'r' * (10 * 2**20)\n")
    assert result.status == "succeeded"
    assert result.result_truncated
    assert len(result.result) == TEST_LIMITS.result_bytes


def test_raw_result_pipe_flood_is_killed(sandbox: Sandbox) -> None:
    code = "import os\ndef run(p):\n    while True:\n        os.write(3, b'{' * 65536)\n"
    result = run(sandbox, code)
    assert (result.status, result.killed_reason) == ("killed", "output")
    assert result.result == b""
    assert_healthy(sandbox)


def test_open_files_limit(sandbox: Sandbox) -> None:
    code = (
        "def run(p):\n    fhs = []\n    try:\n        while True:\n"
        "            fhs.append(open('task_in', 'w'))\n"
        "    except OSError as exc:\n        return [len(fhs), exc.errno]\n"
    )
    count, err = json.loads(run(sandbox, code).result)
    assert err == 24 and count <= TEST_LIMITS.max_open_files  # EMFILE


def test_everything_kept_of_a_run_adds_up_to_the_output_limit(sandbox: Sandbox) -> None:
    """20 files of 1 MiB, a 1 MiB result, 1 MiB on each stream: 1 MiB is kept in all."""
    code = (
        "import os, sys\n"
        "def run(p):\n"
        "    for i in range(20):\n"
        "        with open(f'output/f{i:02}.bin', 'wb') as f:\n"
        "            f.write(b'F' * (2**20 - 1))\n"
        "    with open('output/small.txt', 'w') as f:\n"
        "        f.write('small')\n"
        "    sys.stdout.write('O' * 2**20)\n"
        "    sys.stderr.write('E' * 2**20)\n"
        "    return 'R' * 2**20\n"
    )
    limits = replace(TEST_LIMITS, max_output_bytes=2**20, max_file_bytes=2**21, wall_seconds=20.0)
    result = run(sandbox, code, limits=limits)
    assert result.status == "succeeded", result
    kept = (
        len(result.result)
        + len(result.stdout.encode())
        + len(result.stderr.encode())
        + sum(len(f.content) for f in result.output_files)
    )
    assert kept <= 2**20, kept
    assert result.result_truncated and result.stdout_truncated and result.stderr_truncated
    assert "small.txt" in {f.name for f in result.output_files}  # what fits is still kept
    assert len(result.output_files_omitted) == 20 - sum(f.size > 5 for f in result.output_files)
    assert_healthy(sandbox)
