"""A version's view is typed (state, kind, checks) while its stored JSON keeps its shape."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.services.checks import Check, CheckResult
from bot.services.generation import Generated
from bot.services.task_versions import new_version
from bot.services.views import ReplacedCheck, VersionView, checks_listing
from bot.slack import commands
from storage.kinds import RequestKind, TaskType, VersionState

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CHECK = "def check_counts():\n    assert run('s') == 1\n"


def _generated(*, passed: bool) -> Generated:
    return Generated(
        code="def run(input_path):\n    return 1\n",
        name="count",
        title="Count",
        summary="Counts.",
        inputs={},
        outputs={},
        dependencies=(),
        change_summary="",
        model="m",
        input_tokens=1,
        output_tokens=2,
        model_requests=1,
        checks=(Check("check_counts", CHECK), Check("check_empty", "def check_empty(): ...")),
        check_results=(
            CheckResult("check_counts", True),
            CheckResult("check_empty", passed, None if passed else "AssertionError"),
        ),
        replaced_checks=(("check_old", "the user asked for words"),),
        checks_passed=passed,
    )


def test_the_stored_json_keeps_its_shape_and_the_view_reads_it_typed() -> None:
    row = new_version(
        "t1",
        2,
        _generated(passed=False),
        task_type="passthrough",
        request_kind=RequestKind.REFINE,
        request_text="words too",
        requested_by="U1",
        at=NOW,
        cost_usd=None,
    )
    assert row.state == "draft" and type(row.state) is str
    assert row.request_kind == "refine" and type(row.request_kind) is str
    assert row.checks == [
        {"name": "check_counts", "code": CHECK},
        {"name": "check_empty", "code": "def check_empty(): ..."},
    ]
    assert row.check_results == [
        {"name": "check_counts", "ok": True, "error": None},
        {"name": "check_empty", "ok": False, "error": "AssertionError"},
    ]
    assert row.replaced_checks == [{"name": "check_old", "reason": "the user asked for words"}]

    view = VersionView.of(row)
    assert view.state is VersionState.DRAFT and view.request_kind is RequestKind.REFINE
    assert view.checks[0] == Check("check_counts", CHECK)
    assert view.check_results[1] == CheckResult("check_empty", False, "AssertionError")
    assert view.replaced_checks == (ReplacedCheck("check_old", "the user asked for words"),)
    assert view.checks_passed == 1
    assert view.check_summary == "1 of 2 checks failed: check_empty"
    listing = checks_listing(view)
    assert (
        "# check_counts: passed" in listing and "# check_empty: FAILED: AssertionError" in listing
    )


def test_rows_stored_before_checks_read_as_ready_and_unchecked() -> None:
    row = new_version(
        "t1",
        1,
        _generated(passed=True),
        task_type="passthrough",
        request_kind=RequestKind.CREATE,
        request_text="count",
        requested_by="U1",
        at=NOW,
        cost_usd=None,
    )
    row.state = None  # type: ignore[assignment]  # a row from before the checks' migration
    row.checks = row.check_results = row.replaced_checks = None
    view = VersionView.of(row)
    assert view.state is VersionState.READY
    assert (view.checks, view.check_results, view.replaced_checks) == ((), (), ())
    assert view.check_summary == "unchecked: the model wrote no usable checks"


def test_a_create_command_carries_its_task_type_as_the_enum() -> None:
    assert commands.parse("create count rows") == commands.Create(
        "count rows", TaskType.PASSTHROUGH
    )
    parsed = commands.parse("create --type Generator say hello")
    assert parsed == commands.Create("say hello", TaskType.GENERATOR)
    assert isinstance(parsed, commands.Create) and parsed.task_type is TaskType.GENERATOR
    unknown = commands.parse("create --type transformer x")
    assert (
        isinstance(unknown, commands.Help) and "Unknown task type `transformer`" in unknown.problem
    )
