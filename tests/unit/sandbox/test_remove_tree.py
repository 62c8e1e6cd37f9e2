"""The clean-up removes any tree a run can leave, and nothing outside it."""

from __future__ import annotations

import os
from pathlib import Path

from bot.worker.sandbox._rundir import remove_run_dir


def test_any_shape_is_removed_and_links_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    run = tmp_path / "run"
    run.mkdir()
    here = os.getcwd()
    os.chdir(run)
    try:
        for _ in range(3000):  # far deeper than the interpreter's recursion limit
            os.mkdir("d")
            os.chdir("d")
        Path("bottom").write_text("x")
    finally:
        os.chdir(here)
    (run / "link-to-outside").symlink_to(outside)
    (run / "dangling").symlink_to(tmp_path / "nowhere")
    (run / "loop").symlink_to("loop")
    os.mkfifo(run / "fifo")
    os.mkdir(os.path.join(os.fsencode(run), b"\xff\xfe bad utf-8\nnewline"))
    (run / "ro").mkdir()
    (run / "ro" / "f").write_text("x")
    (run / "ro").chmod(0o500)
    (run / "none").mkdir()
    (run / "none").chmod(0)
    assert remove_run_dir(run)
    assert not run.exists()
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_file_where_the_directory_was_is_removed(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a directory")
    assert remove_run_dir(tmp_path / "run") and not (tmp_path / "run").exists()
    assert remove_run_dir(tmp_path / "never-existed")
