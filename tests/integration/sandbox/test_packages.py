"""The base set of packages works inside a confined run, warm imports included."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from bot.config import Settings
from bot.worker.sandbox import Sandbox
from bot.worker.sandbox.sandbox import BASE_PACKAGES

from .conftest import run

CHART = """
import matplotlib.pyplot as plt
import pandas as pd

def run(input_path):
    df = pd.read_csv(input_path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.bar(df['month'], df['sales'])
    ax.set_title('Sales per month')
    ax.set_xlabel('month')
    ax.set_ylabel('sales')
    fig.tight_layout()
    fig.savefig('output/chart.png')
    import matplotlib
    return {'rows': len(df), 'cachedir': matplotlib.get_cachedir(),
            'backend': matplotlib.get_backend()}
"""


def test_the_base_set_is_the_settings_default() -> None:
    assert Settings().sandbox_packages == BASE_PACKAGES


def test_a_chart_is_drawn_with_the_warm_fonts_again_and_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = tmp_path / "sales.csv"
    source.write_text("month,sales\nJan,3\nFeb,5\nMar,4\n")
    for _ in range(3):  # each run in a new copy of the zygote: the fonts work in every one
        result = run(sandbox, CHART, input_path=source, input_name="sales.csv")
        assert result.status == "succeeded", (
            result.error_message,
            result.stderr,
            result.killed_reason,
        )
        value = json.loads(result.result)
        assert value["rows"] == 3 and value["backend"].lower() == "agg"
        # matplotlib's caches are the run's own, not the zygote's.
        assert "/tmp" in value["cachedir"] and "cache-" not in value["cachedir"]
        (png,) = [f for f in result.output_files if f.name == "chart.png"]
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 5000


def test_xlsx_in_and_out_and_pdf_docx_text(sandbox: Sandbox, tmp_path: Path) -> None:
    code = """
import pandas as pd, zipfile, docx, pypdf, pyarrow

def run(input_path):
    frame = pd.read_excel(input_path, sheet_name=None)
    pd.DataFrame({'a': [1, 2]}).to_excel('output/report.xlsx', index=False)
    doc = docx.Document()
    doc.add_paragraph('hello docx')
    doc.save('output/note.docx')
    text = docx.Document('output/note.docx').paragraphs[0].text
    pd.DataFrame({'a': [1]}).to_parquet('output/t.parquet')
    back = len(pd.read_parquet('output/t.parquet'))
    return {'sheets': {k: len(v) for k, v in frame.items()}, 'docx': text,
            'parquet': back, 'pypdf': bool(pypdf.PdfWriter)}
"""
    import pandas as pd

    source = tmp_path / "book.xlsx"
    with pd.ExcelWriter(source) as writer:
        pd.DataFrame({"x": range(7)}).to_excel(writer, sheet_name="Data", index=False)
        pd.DataFrame({"y": [1]}).to_excel(writer, sheet_name="Notes", index=False)
    result = run(sandbox, code, input_path=source, input_name="book.xlsx")
    assert result.status == "succeeded", (result.error_message, result.stderr, result.killed_reason)
    assert json.loads(result.result) == {
        "sheets": {"Data": 7, "Notes": 1},
        "docx": "hello docx",
        "parquet": 1,
        "pypdf": True,
    }
    report = next(f for f in result.output_files if f.name == "report.xlsx")
    assert zipfile.ZipFile(io.BytesIO(report.content)).namelist()


REACH_CACHE = """
import os

def run(input_path):
    found = {}
    for name, attempt in [
        ('list', lambda: os.listdir(CACHE)),
        ('stat', lambda: os.stat(CACHE)),
        ('read', lambda: open(FONTLIST, 'rb').read(16)),
        ('write', lambda: open(os.path.join(CACHE, 'planted.json'), 'w').write('{}')),
    ]:
        try:
            attempt()
            found[name] = 'done'
        except OSError as exc:
            found[name] = type(exc).__name__
    return found
"""


def test_the_zygotes_matplotlib_cache_is_out_of_every_runs_reach(sandbox: Sandbox) -> None:
    """The zygote's font list and caches (built at its import) cannot be read, listed or
    written by a run that knows where they are, in any slot."""
    root = sandbox._work_root
    assert root is not None
    # The warm slots' caches hold the font list their import built; the light twins' none.
    caches = [c for c in sorted(root.glob("cache-*")) if any(c.glob("fontlist-*.json"))]
    assert len(caches) == 2
    for cache in caches:
        (fontlist,) = cache.glob("fontlist-*.json")
        code = f"CACHE = {str(cache)!r}\nFONTLIST = {str(fontlist)!r}\n" + REACH_CACHE
        # Both kinds of slot, twice each (a run takes whichever of its kind is free): code
        # naming a package runs in a warm slot, other code in a light one.
        for source in [code, "import matplotlib\n" + code, code, "import matplotlib\n" + code]:
            result = run(sandbox, source)
            assert result.status == "succeeded", (result.error_message, result.stderr)
            assert "done" not in json.loads(result.result).values(), result.result
        assert [p.name for p in cache.iterdir()] == [fontlist.name]


def test_code_naming_no_package_runs_in_a_light_twin(sandbox: Sandbox) -> None:
    """Stdlib-only code is forked from a zygote without the packages (cheaper to fork and to
    end); code naming one gets the warm zygote, with them already imported."""
    # The name is spelt in two halves, so the probe itself names no package.
    probe = "import sys\n\ndef run(input_path):\n    return [m for m in sys.modules if m == 'pan' + 'das']\n"
    light = run(sandbox, probe)
    warm = run(sandbox, "import numpy\n" + probe)
    assert (light.status, warm.status) == ("succeeded", "succeeded")
    assert json.loads(light.result) == [] and json.loads(warm.result) == ["pandas"]
