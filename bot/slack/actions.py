"""The ids the Run button and its file modal carry, and the listeners route on: apart from the
blocks that render them (``bot.slack.blocks``), so the web edge's listeners load no rendering."""

from __future__ import annotations

RUN_ACTION = "run_task"
RUN_MODAL = "run_with_file"
FILE_BLOCK = "input_files"
FILE_ACTION = "files"
