"""Run changes across machines, over the broker Celery already needs: Redis pub/sub.

A Celery worker publishes the id of every run it claims or records (``publish``); each web or
flow process subscribes (``RedisRelay.start``) and tells its own ``RunSignal``, so the Slack
message, the terminal and the API hear a run end on another machine at once. Pub/sub is
fire-and-forget: a change published while a subscriber is reconnecting is missed, and that
subscriber's slow sweep finds it in the database."""

from __future__ import annotations

import logging
import threading

import redis

from bot.services.events import RunSignal

logger = logging.getLogger(__name__)

CHANNEL = "taskbot.run-changes"


class RedisRelay:
    def __init__(self, url: str, signal: RunSignal, *, channel: str = CHANNEL) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._listen_client = redis.Redis.from_url(url, socket_connect_timeout=2)
        self._signal = signal
        self._channel = channel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="taskbot-relay", daemon=True)
        self.subscribed = threading.Event()

    def publish(self, run_id: str) -> None:
        try:
            self._client.publish(self._channel, run_id)
        except redis.RedisError as exc:
            logger.warning("could not publish the change of run %s: %s", run_id, exc)

    def start(self) -> None:
        self._thread.start()

    def _listen(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                pubsub = self._listen_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self._channel)
                self.subscribed.set()
                delay = 0.5
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        run_id = data.decode() if isinstance(data, bytes) else str(data)
                        self._signal.heard(run_id)
                pubsub.close()
            except redis.RedisError as exc:
                self.subscribed.clear()
                logger.warning("run changes: Redis unreachable (%s); again in %.1f s", exc, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 30.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3)
        self._client.close()
        self._listen_client.close()
