"""``python -m bot task run`` and ``python -m bot doctor``."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from bot.config import Settings
from bot.progress import Progress, interruptibly, wanted
from bot.services.container import Services
from bot.services.errors import InvalidInput, ServiceError
from bot.services.outcomes import load_json_result
from bot.services.runs import RunOutcome, RunView
from bot.services.tables import as_table, terminal_table
from bot.worker.sandbox import probe_host
from storage.kinds import ResultKind, RunStatus

# Terminal controls a run could print: C0 but tab and newline, DEL, C1 (CSI, OSC 52 clipboard,
# OSC 8 links, titles, screen clears all start with one of these), bidi overrides, surrogates.
_TERMINAL_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATES = re.compile("[\ud800-\udfff]")


def for_terminal(text: str) -> str:
    """Untrusted text made inert for a terminal: each control shown as a visible escape."""
    return _TERMINAL_CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)


def _encodable(text: str) -> str:
    return _SURROGATES.sub("\ufffd", text)


def _read_input(args: argparse.Namespace, limit: int) -> tuple[bytes | None, str | None]:
    if args.input is not None and args.text is not None:
        raise InvalidInput("Give --input FILE or --text, not both.")
    if args.text is not None:
        return args.text.encode("utf-8"), "input.txt"
    if args.input is None:
        return None, None
    path: Path = args.input
    if not path.is_file():
        raise InvalidInput(f"No such file: {path}")
    if path.stat().st_size > limit:
        raise InvalidInput(
            f"The file is too large: {path.stat().st_size / 2**20:.1f} MiB, "
            f"the limit is {limit / 2**20:.1f} MiB (SANDBOX_MAX_INPUT_MB)."
        )
    return path.read_bytes(), path.name


def _wait(services: Services, run_id: str, progress: Progress) -> RunView:
    """Until the run ends: woken by the run's own events (this process, or a Celery worker's
    over Redis), with the database read again every couple of seconds as a safety net."""
    deadline = time.monotonic() + services.runs.stale_after.total_seconds() + 30
    while True:
        view = services.runs.wait(run_id, timeout=min(2.0, max(0.0, deadline - time.monotonic())))
        if view.final or time.monotonic() > deadline:
            return view
        progress.say(f"run {run_id[:8]}: {view.status}")


INTERRUPTED = RunOutcome(
    status=RunStatus.FAILED,
    error_type="Interrupted",
    error_message="Stopped with Ctrl-C in the terminal before it finished.",
)

# The setting that raises each limit a run can be killed for.
LIMIT_SETTINGS = {
    "memory": "SANDBOX_MEMORY_MB",
    "cpu": "SANDBOX_CPU_SECONDS",
    "processes": "SANDBOX_MAX_PROCESSES",
    "file_size": "SANDBOX_MAX_FILE_MB",
    "output": "SANDBOX_MAX_OUTPUT_KB",
    "open_files": "SANDBOX_MAX_OPEN_FILES",
}


def describe(view: RunView) -> str:
    if view.status is RunStatus.SUCCEEDED:
        return f"succeeded in {view.duration_seconds or 0:.2f} s"
    if view.status is RunStatus.TIMED_OUT:
        return f"timed out after {view.duration_seconds or 0:.1f} s (SANDBOX_WALL_SECONDS)"
    if view.status is RunStatus.KILLED and view.killed_reason == "stopped":
        return f"killed: stopped by {view.stopped_by or 'someone'}"
    if view.status is RunStatus.KILLED:
        setting = LIMIT_SETTINGS.get(view.killed_reason or "")
        where = f" ({setting})" if setting else ""
        return f"killed: over the {view.killed_reason or 'resource'} limit{where}"
    if view.status is RunStatus.FAILED:
        text = f"failed: {view.error_type or 'Error'}: {view.error_message or ''}".rstrip()
        return for_terminal(text)
    return view.status


def run_task(args: argparse.Namespace, services: Services, out: TextIO) -> int:
    data, name = _read_input(args, services.runs.max_input_bytes)
    submit = services.executor is None  # local: execute right here, in this process
    err = sys.stderr
    view = services.runs.request(
        args.id,
        requested_by="cli",
        input_data=data,
        input_name=name,
        version=args.version,
        submit=submit,
    )
    try:
        with Progress(
            f"run {view.id[:8]}: running", stream=err, enabled=wanted(err, asked=args.progress)
        ) as progress:
            executor = services.executor
            if executor is not None:
                run_id = view.id
                interruptibly(lambda: executor.execute(run_id))
            view = _wait(services, view.id, progress)
    except KeyboardInterrupt:
        if services.executor is not None:  # it ran in this process: it ends with it
            services.runs.finish(view.id, INTERRUPTED)
            # The sandbox is torn down under the run's thread on the way out: what it logs
            # then is noise for someone who pressed Ctrl-C, not news.
            logging.disable(logging.CRITICAL)
        else:  # a worker holds it: ask it to kill the run (killed, stopped from the terminal)
            try:
                services.stops.stop_run(view.id, by="cli", operator=True)
                err.write(f"\nstopping run {view.id}: its worker kills it\n")
            except ServiceError as exc:
                err.write(f"\n{for_terminal(str(exc))}\n")
        raise
    err.write(f"run {view.id} of v{view.version_number}: {for_terminal(describe(view))}\n")
    for label, raw in (("stdout", view.stdout), ("stderr", view.stderr)):
        if raw:
            text = for_terminal(raw)
            err.write(f"--- {label} ---\n{text}{'' if text.endswith(chr(10)) else chr(10)}")
    if view.traceback_tail:
        err.write(f"--- traceback ---\n{for_terminal(view.traceback_tail)}\n")
    write_result(view, out=out, err=err)
    if view.result_truncated:
        err.write("(the result was cut at the output limit)\n")
    for f in view.files:
        if args.output_dir is not None:
            target = args.output_dir / f.name
            if f.name.startswith("/") or ".." in f.name.split("/"):
                err.write(f"skipped output file {for_terminal(f.name)}: not a plain name\n")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.content)
            err.write(f"wrote {for_terminal(str(target))} ({f.size} bytes)\n")
        else:
            name = for_terminal(f.name)
            err.write(f"output file {name} ({f.size} bytes); save with --output-dir DIR\n")
    return 0 if view.status is RunStatus.SUCCEEDED else 1


def write_result(view: RunView, *, out: TextIO, err: TextIO) -> None:
    """The result on standard output: a table for a person at a terminal, else exact."""
    shown = for_terminal if out.isatty() else _encodable  # piped: the exact result, for a file
    json_result = view.result if view.result_kind is ResultKind.JSON else None
    parsed = load_json_result(json_result) if json_result else None
    table = as_table(parsed[1]) if parsed is not None and parsed[0] else None
    if table is not None and out.isatty():  # a person reads a table; a pipe gets the JSON
        rows, columns = table.shape
        out.write(for_terminal(terminal_table(table)) + "\n")
        err.write(f"({rows:,} rows, {columns} columns; pipe the output for JSON)\n")
    elif parsed is not None and parsed[0]:
        out.write(shown(json.dumps(parsed[1], indent=2, ensure_ascii=False)) + "\n")
    elif view.result_kind in (ResultKind.JSON, ResultKind.TEXT) and view.result is not None:
        text = shown(view.result.decode("utf-8", "replace"))
        out.write(text if text.endswith("\n") else text + "\n")
    elif view.result_kind is ResultKind.BYTES and view.result is not None and out.isatty():
        err.write(
            f"(a {len(view.result)}-byte binary result; redirect standard output to keep it)\n"
        )
    elif view.result_kind is ResultKind.BYTES and view.result is not None:
        out.flush()
        getattr(out, "buffer", sys.stdout.buffer).write(view.result)


def doctor(settings: Settings, out: TextIO) -> int:
    iso = probe_host()
    out.write("Sandbox isolation on this host:\n")
    for key, value in asdict(iso).items():
        out.write(f"  {key:<18} {value}\n")
    out.write("What each run relies on:\n")
    for protection, present in iso.protections:
        out.write(f"  [{'x' if present else ' '}] {protection}\n")
    for warning in iso.warnings:
        out.write(f"  note: {warning}\n")
    if iso.secure:
        out.write("The sandbox can isolate generated code on this host.\n")
        return 0
    out.write("The sandbox CANNOT fully isolate generated code here:\n")
    for problem in iso.problems:
        out.write(f"  - {problem}\n")
    if settings.sandbox_insecure:
        out.write("SANDBOX_INSECURE=1 is set: code will run anyway, WITHOUT these protections.\n")
        return 0
    out.write("Runs are refused until this is fixed (or SANDBOX_INSECURE=1 opts out).\n")
    return 1
