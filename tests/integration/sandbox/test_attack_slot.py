"""Attack: jam a slot for everyone after you (a tree the clean-up cannot remove, memory left
charged to the slot's tmpfs), so that later normal runs fail. After any run, whatever it did,
the next run in the same slot must behave as on a fresh slot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.worker.sandbox import Sandbox, SandboxLimits

from .conftest import TEST_LIMITS, processes_of, run, slot_uids

LIMITS = SandboxLimits(
    wall_seconds=20.0,
    cpu_seconds=10,
    memory_bytes=256 * 2**20,
    max_processes=16,
    max_file_bytes=64 * 2**20,
    max_open_files=64,
    max_output_bytes=TEST_LIMITS.max_output_bytes,
    max_input_bytes=TEST_LIMITS.max_input_bytes,
)

# Needs 160 MiB of the slot's 256 MiB: fails when what the last run wrote is still charged.
NORMAL = "def run(p):\n    block = bytearray(160 * 2**20)\n    return len(block)\n"

DEEP_AND_HEAVY = """
import os

def run(p):
    os.chdir("output")
    for _ in range(1500):
        os.mkdir("d")
        os.chdir("d")
    for n in range(5):  # 200 MiB in the slot's tmpfs, at the bottom of the tree
        with open(f"big{n}", "wb") as f:
            for _ in range(40):
                f.write(b"x" * 2**20)
    return "jammed"
"""

ODD_SHAPES = """
import os

def run(p):
    os.makedirs("output/a/b/c")
    open("output/a/b/c/f", "w").write("x")
    os.link("output/a/b/c/f", "../tmp/hard")
    os.chmod("output/a/b/c/f", 0)
    os.chmod("output/a/b/c", 0)
    os.chmod("output/a/b", 0o500)
    os.mkdir(b"output/\\xff\\xfe-not-utf8")
    os.mkdir("output/line\\nbreak")
    os.mkdir("output/" + "n" * 255)
    os.symlink("/", "output/root-link")
    os.symlink("loop", "output/loop")
    os.symlink("/nonexistent/dangling", "../tmp/dangling")
    os.mkfifo("output/fifo")
    os.mkfifo("../tmp/fifo")
    for i in range(3000):
        open(f"../tmp/wide{i}", "w").close()
    os.chdir("output/" + "n" * 255)
    for _ in range(40):  # a path far over PATH_MAX
        os.mkdir("m" * 250)
        os.chdir("m" * 250)
    with open("tail", "wb") as f:
        f.write(b"y" * 2**20)
    os.chmod(".", 0)
    return "odd"
"""


@pytest.fixture(scope="module")
def single() -> Iterator[Sandbox]:
    box = Sandbox(slots=1, limits=LIMITS)
    box.start()
    try:
        yield box
    finally:
        box.close()


def _charged_shmem(box: Sandbox) -> int:
    cgroup = box._slots[0].cgroup
    for directory in cgroup.dirs if cgroup is not None else []:
        stat = directory / "memory.stat"
        if stat.exists():
            fields = dict(line.split() for line in stat.read_text().splitlines())
            return int(fields["shmem"])
    return 0


def _assert_fresh(box: Sandbox) -> None:
    """The slot holds nothing of earlier runs, and a run needing most of its memory works."""
    for _ in range(3):
        result = run(box, NORMAL)
        assert (result.status, result.result) == ("succeeded", b"167772160"), result
    slot = box._slots[0]
    assert list(slot.host_slot_dir().iterdir()) == []
    usage = os.statvfs(slot.host_slot_dir())
    assert usage.f_blocks == usage.f_bfree  # the tmpfs is empty
    assert _charged_shmem(box) == 0  # and nothing of it is charged to the slot's cgroup
    assert processes_of(slot_uids(box)) == []


def test_a_deep_heavy_tree_does_not_jam_the_slot(single: Sandbox) -> None:
    _assert_fresh(single)
    result = run(single, DEEP_AND_HEAVY)
    assert (result.status, result.result) == ("succeeded", b"jammed"), result
    _assert_fresh(single)


def test_odd_shapes_are_cleaned_up(single: Sandbox) -> None:
    result = run(single, ODD_SHAPES)
    assert (result.status, result.result) == ("succeeded", b"odd"), result
    _assert_fresh(single)


def test_a_killed_run_mid_write_leaves_a_fresh_slot(single: Sandbox) -> None:
    code = DEEP_AND_HEAVY.replace('return "jammed"', "while True:\n        pass")
    result = run(single, code, limits=replace(LIMITS, wall_seconds=3.0))
    assert result.status == "timed_out", result
    _assert_fresh(single)


def test_a_slot_left_unclean_is_replaced_before_its_next_run(
    single: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a clean-up ever fail, the slot is not reused as it is: it is started afresh."""
    from bot.worker.sandbox import _slot

    monkeypatch.setattr(_slot, "remove_run_dir", lambda path: False)  # leaves 200 MiB behind
    before = single._slots[0].proc
    result = run(single, DEEP_AND_HEAVY)
    assert (result.status, result.result) == ("succeeded", b"jammed"), result
    monkeypatch.undo()
    _assert_fresh(single)
    assert single._slots[0].proc is not before  # a new zygote, a new tmpfs


def test_a_slot_whose_init_died_is_replaced(single: Sandbox) -> None:
    """The PID namespace's init gone (killed by an operator, say): the next run still works."""
    slot = single._slots[0]
    zygote, init = slot.proc, int(slot.features["init_pid"])
    assert zygote is not None
    os.kill(init, 9)
    zygote.wait(timeout=10)  # the zygote leaves at once: nothing can be forked any more
    result = run(single, NORMAL)
    assert (result.status, result.result) == ("succeeded", b"167772160"), result
    assert slot.proc is not zygote
    _assert_fresh(single)
