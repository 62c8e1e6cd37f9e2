"""Results people look at, through signed Slack HTTP, the real server and the real sandbox:
charts inline, spreadsheets in and out, records as a table block, images as one gallery."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from tests.e2e.slack.conftest import Stack, drain
from tests.e2e.slack.test_connect_and_grid import file_event
from tests.e2e.slack.test_flows import create, wait_run
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHART = """
import matplotlib.pyplot as plt
import pandas as pd

def run(input_path):
    df = pd.read_csv(input_path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.bar(df['month'], df['sales'])
    ax.set_title('Sales per month')
    fig.tight_layout()
    fig.savefig('output/sales.png')
    return f"charted {len(df)} months"
"""
COUNT_ROWS = """
import pandas as pd

def run(input_path):
    sheets = pd.read_excel(input_path, sheet_name=None)
    return {name: len(frame) for name, frame in sheets.items()}
"""
REPORT = """
import pandas as pd

def run(input_path):
    df = pd.read_csv(input_path)
    df.groupby('month', as_index=False)['sales'].sum().to_excel('output/report.xlsx', index=False)
    return 'report written'
"""
RECORDS = """
def run(input_path):
    return [{'region': r, 'sales': s, 'share': s / 100.0}
            for r, s in [('North', 12345), ('South', 980), ('East', 40), ('West', 7), ('Mid', 1)]]
"""
THREE_CHARTS = """
import matplotlib.pyplot as plt

def run(input_path):
    for i in range(3):
        fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
        ax.plot(range(5), [x * (i + 1) for x in range(5)])
        ax.set_title(f'chart {i + 1}')
        fig.savefig(f'output/chart_{i + 1}.png')
        plt.close(fig)
    return 'three charts'
"""
SALES = b"month,sales\nJan,3\nFeb,5\nMar,4\nJan,2\n"


def run_on(stack: Stack, code: str, name: str, data: bytes, kind: str = "text/csv") -> str:
    _task_id, root_ts = create(stack, code, name="result_task")
    stack.slack.event(file_event(root_ts, stack.mock.host_file(name, data, kind)))
    return root_ts


def uploads(stack: Stack, root_ts: str, *, files: int) -> tuple[Call, dict[str, bytes]]:
    """The one files.completeUploadExternal call into the thread, and each file's bytes."""
    (done,) = stack.mock.wait_for("files.completeUploadExternal", 1, timeout=30)
    assert done.params["thread_ts"] == root_ts and done.params["channel_id"] == "C1"
    listed = done.params["files"]
    listed = json.loads(listed) if isinstance(listed, str) else listed
    assert len(listed) == files, listed
    content = {str(c.params["file_id"]): c.params["content"] for c in stack.mock.of("upload")}
    return done, {str(f["title"]): content[f["id"]] for f in listed}


def test_a_task_that_charts_a_csv_posts_the_png_in_the_thread(stack: Stack) -> None:
    root_ts = run_on(stack, CHART, "sales.csv", SALES)
    shown = wait_run(stack, "succeeded")
    assert "charted 4 months" in shown
    assert "1 file (" in shown and " KiB) · " in shown  # results carry files and duration
    _done, files = uploads(stack, root_ts, files=1)
    png = files["sales.png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (800, 450)  # the figure as the code sized it


def test_an_uploaded_xlsx_is_read_and_its_rows_counted(stack: Stack) -> None:
    book = io.BytesIO()
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"x": range(12)}).to_excel(writer, sheet_name="Orders", index=False)
        pd.DataFrame({"y": range(3)}).to_excel(writer, sheet_name="Returns", index=False)
    run_on(stack, COUNT_ROWS, "book.xlsx", book.getvalue(), XLSX)
    shown = wait_run(stack, "succeeded")
    assert '"Orders": 12' in shown and '"Returns": 3' in shown


def test_a_task_that_writes_output_report_xlsx_posts_it_by_name(stack: Stack) -> None:
    root_ts = run_on(stack, REPORT, "sales.csv", SALES)
    assert "report.xlsx" in wait_run(stack, "succeeded")
    _done, files = uploads(stack, root_ts, files=1)
    report = pd.read_excel(io.BytesIO(files["report.xlsx"]))
    assert report.to_dict(orient="records") == [
        {"month": "Feb", "sales": 5},
        {"month": "Jan", "sales": 5},
        {"month": "Mar", "sales": 4},
    ]


def _table(call: Call) -> dict[str, Any]:
    (attachment,) = call.params["attachments"]
    (block,) = attachment["blocks"]
    assert block["type"] == "table"
    return dict(block)


def test_a_five_record_result_appears_as_a_table_block(stack: Stack) -> None:
    root_ts = run_on(stack, RECORDS, "any.txt", b"x", "text/plain")
    shown = wait_run(stack, "succeeded")
    assert "5 rows by 3 columns" in shown
    assert "5 rows · " in shown and "sandbox CPU" in shown
    final = next(c for c in stack.mock.of("chat.update") if "succeeded" in str(c.params["text"]))
    table = _table(final)
    rows = [[cell["text"] for cell in row] for row in table["rows"]]
    assert rows[0] == ["region", "sales", "share"]
    assert rows[1] == ["North", "12,345", "123.45"]
    assert len(rows) == 6
    assert [s.get("align") for s in table["column_settings"]] == [None, "right", "right"]
    drain(stack)  # the run's message and uploads all done
    assert not stack.mock.of("files.completeUploadExternal")  # it fits: nothing attached
    assert root_ts


def test_three_images_arrive_together_as_one_gallery(stack: Stack) -> None:
    root_ts = run_on(stack, THREE_CHARTS, "any.txt", b"x", "text/plain")
    assert "three charts" in wait_run(stack, "succeeded")
    _done, files = uploads(stack, root_ts, files=3)  # one upload call: one message, a gallery
    assert sorted(files) == ["chart_1.png", "chart_2.png", "chart_3.png"]
    assert all(content.startswith(b"\x89PNG") for content in files.values())
    assert len(stack.mock.of("files.getUploadURLExternal")) == 3
    assert len(stack.mock.of("files.completeUploadExternal")) == 1  # no wall of messages
    assert not [c for c in stack.mock.of("chat.postMessage") if ":warning:" in str(c.params)]


def test_a_refinement_tells_the_model_what_the_users_file_looks_like(stack: Stack) -> None:
    root_ts = run_on(stack, REPORT, "sales.csv", SALES)
    wait_run(stack, "succeeded")
    stack.model.queue(answer_json(code=REPORT, name="result_task", change_summary="Same."))
    before = len(stack.mock.of("chat.update"))
    stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "sort it by sales",
            "ts": "1800000000.000009",
            "thread_ts": root_ts,
        }
    )
    stack.mock.wait_for("chat.update", before + 2)
    prompt = stack.model.prompts[-1][1].content
    assert f"`sales.csv`, {len(SALES)} bytes, csv (delimiter ',')" in prompt, prompt
    assert "month,sales\nJan,3\nFeb,5" in prompt
    system = stack.model.prompts[-1][0].content
    assert "matplotlib" in system and "output/<name>.png" in system and "openpyxl" in system


def test_a_file_taskbot_cannot_read_gets_a_clear_answer(stack: Stack) -> None:
    old_excel = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    run_on(stack, COUNT_ROWS, "sales.xls", old_excel, "application/vnd.ms-excel")
    warning = stack.mock.wait_for("chat.postEphemeral")[0]
    assert "`sales.xls` looks like an old Office file: save it as .xlsx" in text_of(warning)
    assert ".xlsx" in text_of(warning) and warning.params["user"] == "U1"
    assert stack.services.runs.queued_ids() == [] and stack.mock.of("file") != []
