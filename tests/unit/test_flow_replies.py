"""What the flow process sends back to the web process, dispatched by type: a check's answer
goes to the one waiting for it, a run's change to the web process's ``RunSignal``."""

from __future__ import annotations

import queue
import threading

from bot.config import Settings
from bot.roles.child import take_until_stop
from bot.services.checks import Execution
from bot.services.events import RunSignal
from bot.services.handoff import CheckDone, CheckRun, ChildProcess, QueuedRun, RunChanged, Stop
from bot.slack.flowproc import FlowProcess

PASSED = Execution(
    status="succeeded", result=b"{}", error_type=None, error_message=None, killed_reason=None
)


def _never_started(settings: Settings, inbox: object, replies: object) -> None:
    raise AssertionError("no flow process is started here")


def _piped(child: ChildProcess) -> ChildProcess:
    """The child's queues as a start would make them, with no process behind them."""
    child._inbox, child._replies = queue.Queue(), queue.Queue()
    return child


def test_a_run_change_from_the_flow_process_wakes_a_wait_in_this_one() -> None:
    signal = RunSignal()
    heard: list[str] = []
    signal.subscribe(heard.append)
    flows = _piped(FlowProcess(Settings(), target=_never_started, signal=signal))
    seen = signal.count
    flows._replies.put(RunChanged("run-1"))
    flows._replies.put(Stop())
    flows._read(flows._replies)  # returns at Stop, after every reply before it
    assert heard == ["run-1"]
    assert signal.wait_after(seen, 0) == seen + 1


def test_a_check_answer_reaches_the_request_that_waits_for_it() -> None:
    flows = _piped(FlowProcess(Settings(), target=_never_started, signal=RunSignal()))
    reader = threading.Thread(target=flows._read, args=(flows._replies,))
    reader.start()

    def answer() -> None:  # the flow process's part: answer the CheckRun it was given
        asked = flows._inbox.get(timeout=30)
        assert isinstance(asked, CheckRun) and asked.code == "harness"
        flows._replies.put(RunChanged("unrelated"))  # not an answer: dispatched elsewhere
        flows._replies.put(CheckDone(asked.request_id, PASSED))

    flow_side = threading.Thread(target=answer)
    flow_side.start()
    try:
        assert flows.execute("harness") == PASSED
    finally:
        flow_side.join(30)
        flows._replies.put(Stop())
        reader.join(30)
    assert not reader.is_alive()


def test_a_run_start_in_the_pool_process_is_heard_as_a_start() -> None:
    """The pool process relays its starts as starts (the run-message watcher need not read a
    run that has only just started) and its other changes as changes."""
    pool_signal = RunSignal()
    sent: list[RunChanged] = []
    pool_signal.relay(
        lambda run_id: sent.append(RunChanged(run_id)),
        on_start=lambda run_id: sent.append(RunChanged(run_id, started=True)),
    )
    pool_signal.started("run-1")
    pool_signal.changed("run-1")
    assert sent == [RunChanged("run-1", started=True), RunChanged("run-1")]

    heard: list[RunChanged] = []
    pool = ChildProcess(Settings(), target=_never_started, name="pool", on_change=heard.append)
    replies: queue.Queue[object] = queue.Queue()
    for change in sent:
        replies.put(change)
    replies.put(Stop())
    pool._read(replies)
    assert heard == sent


def test_a_child_takes_values_by_type_until_stop_past_unknown_and_failing_ones() -> None:
    inbox: queue.Queue[object] = queue.Queue()
    for item in (QueuedRun("a"), "not a value", QueuedRun("boom"), RunChanged("c"), Stop()):
        inbox.put(item)
    inbox.put(QueuedRun("after the stop"))
    taken: list[str] = []

    def run(item: QueuedRun) -> None:
        if item.run_id == "boom":
            raise RuntimeError("a handler failed")
        taken.append(item.run_id)

    take_until_stop(
        inbox,
        {QueuedRun: run, RunChanged: lambda item: taken.append(f"changed {item.run_id}")},
        role="test",
    )
    assert taken == ["a", "changed c"]
    assert inbox.get_nowait() == QueuedRun("after the stop")  # left for nobody: it stopped
