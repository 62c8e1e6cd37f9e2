"""Model work taken from users in turn (``FairPool``): one user's burst cannot starve another."""

from __future__ import annotations

import threading

import pytest

from bot.services.fairness import Busy, FairPool


class Model:
    """A stand-in for the model: records whose request it served, in order; the first call
    blocks until released, so a backlog builds up behind it."""

    def __init__(self) -> None:
        self.served: list[str] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.done = threading.Semaphore(0)
        self._lock = threading.Lock()

    def call(self, user: str) -> None:
        with self._lock:
            first = not self.served
            self.served.append(user)
        if first:
            self.first_started.set()
            assert self.release.wait(10)
        self.done.release()


def _flood(pool: FairPool, model: Model, user: str, n: int) -> None:
    for _ in range(n):
        ticket = pool.reserve(user=user, channel="C1")
        pool.submit(ticket, lambda: model.call(user))


def test_a_second_user_reaches_the_model_within_one_call_of_its_turn() -> None:
    pool = FairPool(workers=1, per_user=0, per_channel=0)
    model = Model()
    try:
        _flood(pool, model, "UA", 1)
        assert model.first_started.wait(10)
        _flood(pool, model, "UA", 20)  # the first user floods while the model is busy
        ticket = pool.reserve(user="UB", channel="C1")
        assert ticket.ahead == 1  # in turn: one of the flood, then this one
        pool.submit(ticket, lambda: model.call("UB"))
        model.release.set()
        for _ in range(22):
            assert model.done.acquire(timeout=10)
        # First come first served would put UB 22nd; in turn it is served right after UA's
        # call in progress and the one next in line.
        assert model.served.index("UB") <= 2
        assert model.served.count("UA") == 21
    finally:
        model.release.set()
        pool.shutdown(wait=True)


def test_two_users_flooding_alternate() -> None:
    pool = FairPool(workers=1, per_user=0, per_channel=0)
    model = Model()
    try:
        _flood(pool, model, "UA", 1)
        assert model.first_started.wait(10)
        _flood(pool, model, "UA", 5)
        _flood(pool, model, "UB", 5)
        model.release.set()
        for _ in range(11):
            assert model.done.acquire(timeout=10)
        assert model.served[1:] == ["UA", "UB"] * 5
    finally:
        model.release.set()
        pool.shutdown(wait=True)


def test_over_the_user_limit_is_busy_with_how_many_are_ahead_and_loses_nothing() -> None:
    pool = FairPool(workers=1, per_user=2, per_channel=0)
    model = Model()
    try:
        _flood(pool, model, "UA", 2)
        assert model.first_started.wait(10)
        with pytest.raises(Busy, match=r"at most 2 at once\), 1 ahead of you"):
            pool.reserve(user="UA", channel="C1")
        ticket = pool.reserve(user="UB", channel="C1")  # another user still gets in
        pool.submit(ticket, lambda: model.call("UB"))
        model.release.set()
        for _ in range(3):
            assert model.done.acquire(timeout=10)
        assert sorted(model.served) == ["UA", "UA", "UB"]
        # places come back as work ends: the first user may ask again
        deadline = threading.Event()
        for _ in range(100):
            try:
                pool.release(pool.reserve(user="UA", channel="C1"))
                break
            except Busy:
                deadline.wait(0.05)  # the last job's place is given back just after it ends
        else:
            pytest.fail("the user's places never came back")
    finally:
        model.release.set()
        pool.shutdown(wait=True)


def test_over_the_channel_limit_is_busy() -> None:
    pool = FairPool(workers=1, per_user=0, per_channel=1)
    try:
        ticket = pool.reserve(user="UA", channel="C1")
        with pytest.raises(Busy, match="this channel already has 1 request"):
            pool.reserve(user="UB", channel="C1")
        pool.release(pool.reserve(user="UB", channel="C2"))
        pool.release(ticket)
    finally:
        pool.shutdown(wait=True)
