"""A run whose queue message was lost reaches a worker: the sweeper re-sends exactly the queued
runs the broker holds no message for (real Celery publishes on the run's private Valkey).

A message is lost when a worker takes it off the list (BRPOP) and dies before recording it as
unacknowledged, or is killed with a BRPOP pending; the tests take it off the list themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from bot.composition import Services, build_services
from bot.worker.celery_app import QUEUE_NAME, CeleryQueue, Sweeper
from storage import migrate
from storage.db import make_engine
from tests.fakes.model import FakeCodeGenerator
from tests.integration.test_runs import CSV_ROWS, CeleryWorker, Harness, _settings, _waiter

INPUT = b"name\nada\n"


@pytest.fixture
def broker(redis_url: str) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return client


def _services(db_url: str, redis_url: str) -> Services:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    return build_services(
        _settings(db_url, redis_url), engine=engine, generator=FakeCodeGenerator(), runner="celery"
    )


@pytest.fixture
def web(sqlite_url: str, redis_url: str, broker: redis.Redis) -> Iterator[Harness]:
    services = _services(sqlite_url, redis_url)
    try:
        yield Harness(services, _waiter(services), "celery", lambda: None, lambda: None)
    finally:
        services.close()


def _queued_ids(broker: redis.Redis) -> list[str]:
    """The run ids of the messages waiting in the queue, oldest first."""
    return [
        json.loads(raw)["headers"]["argsrepr"][2:-2] for raw in broker.lrange(QUEUE_NAME, 0, -1)
    ][::-1]


def _take(broker: redis.Redis, run_id: str) -> None:
    """Take a run's message off the list, as a worker that dies right after BRPOP does."""
    (raw,) = [
        m
        for m in broker.lrange(QUEUE_NAME, 0, -1)
        if run_id in json.loads(m)["headers"]["argsrepr"]
    ]
    assert broker.lrem(QUEUE_NAME, 1, raw) == 1


def _queue(services: Services) -> CeleryQueue:
    queue = services.runs.queue
    assert isinstance(queue, CeleryQueue)
    return queue


def test_only_the_run_whose_message_was_lost_is_sent_again(
    web: Harness, broker: redis.Redis
) -> None:
    runs = web.services.runs
    task_id = web.task(CSV_ROWS)
    lost, taken, waiting = (
        runs.request(task_id, requested_by="U1", input_data=INPUT).id for _ in range(3)
    )
    assert _queued_ids(broker) == [lost, taken, waiting]
    _take(broker, lost)
    queue = _queue(web.services)
    with queue.app.connection_for_read() as conn:
        # A worker holding ``taken`` (the oldest left): off the list, recorded as unacknowledged.
        consumer = conn.SimpleQueue(QUEUE_NAME, no_ack=False)
        assert consumer.get(timeout=5).payload[0] == [taken]
        assert _queued_ids(broker) == [waiting]
        assert queue.held() == {taken, waiting}

        Sweeper(runs, queue).sweep()  # the lost run is too young: it may still be being sent
        assert _queued_ids(broker) == [waiting]

        sweeper = Sweeper(runs, queue, requeue_after=timedelta(milliseconds=1))
        sweeper.sweep()
        assert _queued_ids(broker) == [waiting, lost]  # re-sent once, the others left alone
        sweeper.sweep()
        assert _queued_ids(broker) == [waiting, lost]  # held now: not sent a third time
        assert [runs.get(r).status for r in (lost, taken, waiting)] == ["queued"] * 3
        consumer.close()


@pytest.mark.postgres
def test_a_run_queued_while_the_only_worker_was_down_reaches_the_restarted_worker(
    postgres_url: str, redis_url: str, broker: redis.Redis, tmp_path: Path
) -> None:
    services = _services(postgres_url, redis_url)
    worker = CeleryWorker(postgres_url, redis_url, tmp_path / "worker.log")
    worker.env["TASKBOT_REQUEUE_AFTER_SECONDS"] = "1"  # the web's send is long done
    try:
        harness = Harness(services, _waiter(services), "celery", lambda: None, lambda: None)
        run = services.runs.request(harness.task(CSV_ROWS), requested_by="U1", input_data=INPUT)
        _take(broker, run.id)  # taken by the dead worker's pending BRPOP
        assert _queued_ids(broker) == []
        worker.start()
        done = harness.wait(run.id)
        assert done.status == "succeeded", (done.error_type, done.error_message)
        assert json.loads(done.result or b"") == [{"name": "ada"}]
        assert done.attempts == 1
    finally:
        worker.stop()
        services.close()
