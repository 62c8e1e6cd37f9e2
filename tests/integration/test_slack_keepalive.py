"""The Web API client keeps its connection: one per thread and host, reused call after call;
a connection the server closed while idle costs nothing but a new one (the call is sent once,
never twice); Slack's answers mean what they meant (errors, rate limits, server errors); and a
file's download never reads past the size limit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.error import URLError

import pytest
from slack_sdk.errors import SlackApiError

from bot.services.errors import InvalidInput
from bot.slack.clients import web_client
from bot.slack.files import SlackFiles
from tests.fakes.slack_api import MockSlackAPI


@pytest.fixture
def mock() -> Iterator[MockSlackAPI]:
    server = MockSlackAPI().start()
    yield server
    server.stop()


def _posts(mock: MockSlackAPI) -> list[tuple[str, int] | None]:
    return [c.peer for c in mock.calls if c.method == "chat.postMessage"]


def test_calls_from_one_thread_share_one_connection(mock: MockSlackAPI) -> None:
    client = web_client(token="xoxb-test", base_url=mock.api_url)
    for n in range(3):
        assert client.chat_postMessage(channel="C1", text=f"hello {n}")["ok"]
    # A second client of the same process (a workspace's, built per call) reuses it too.
    other = web_client(token="xoxb-test", base_url=mock.api_url)
    assert other.chat_postMessage(channel="C1", text="again")["ok"]
    peers = _posts(mock)
    assert len(peers) == 4 and len(set(peers)) == 1

    def elsewhere() -> None:
        assert client.chat_postMessage(channel="C1", text="from another thread")["ok"]

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert len(set(_posts(mock))) == 2  # threads never share a connection


def test_a_connection_the_server_closed_is_replaced_and_the_call_sent_once(
    mock: MockSlackAPI,
) -> None:
    client = web_client(token="xoxb-test", base_url=mock.api_url)
    first = client.chat_postMessage(channel="C1", text="before")
    mock.drop_connections()
    second = client.chat_postMessage(channel="C1", text="after")
    assert first["ok"] and second["ok"] and first["ts"] != second["ts"]
    texts = [c.params["text"] for c in mock.calls if c.method == "chat.postMessage"]
    assert texts == ["before", "after"]
    peers = _posts(mock)
    assert peers[0] != peers[1]


def test_slack_errors_rate_limits_and_server_errors_mean_what_they_did(
    mock: MockSlackAPI,
) -> None:
    client = web_client(token="xoxb-test", base_url=mock.api_url)
    mock.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C404", text="nowhere")
    assert refused.value.response["error"] == "channel_not_found"
    # 503, then fine: retried on the same footing as before.
    mock.fail("chat.postMessage", "service_unavailable")
    assert client.chat_postMessage(channel="C1", text="once 503")["ok"]
    statuses = [c.status for c in mock.calls if c.method == "chat.postMessage"]
    assert statuses[-2:] == [503, 200]
    # 429 with Retry-After: waited out, then sent again.
    mock.rate_limit("chat.postMessage", 0.5)
    assert client.chat_postMessage(channel="C1", text="limited")["ok"]
    statuses = [c.status for c in mock.calls if c.method == "chat.postMessage"]
    assert 429 in statuses[-3:] and statuses[-1] == 200
    # Bad tokens still answer invalid_auth, and the connection survives every answer above.
    bad = web_client(token="xoxb-wrong", base_url=mock.api_url)
    with pytest.raises(SlackApiError) as unauthorised:
        bad.chat_postMessage(channel="C1", text="who?")
    assert unauthorised.value.response["error"] == "invalid_auth"
    assert len(set(_posts(mock))) == 1


def test_file_downloads_keep_the_connection_but_never_read_past_the_limit(
    mock: MockSlackAPI,
) -> None:
    client = web_client(token="xoxb-test", base_url=mock.api_url)
    files = SlackFiles(api_url=mock.api_url, max_bytes=1000)
    small = mock.host_file("a.csv", b"a,b\n1,2\n")
    assert files.download(client, small) == ("a.csv", b"a,b\n1,2\n")
    assert files.download(client, small)[1] == b"a,b\n1,2\n"
    large = mock.host_file("big.csv", b"x" * 50_000)
    with pytest.raises(InvalidInput, match="too large"):
        files.download(client, {**large, "size": None})  # size unknown: found by reading
    # The large body was not read on: its connection was closed, and the next one is new.
    assert files.download(client, small)[1] == b"a,b\n1,2\n"
    peers = [c.peer for c in mock.calls if c.method == "file"]
    assert len(peers) == 4
    assert peers[0] == peers[1] == peers[2] != peers[3]


def test_slack_out_of_reach_is_a_urlerror_as_with_urllib(mock: MockSlackAPI) -> None:
    """What the rest of the app (and slack_sdk's connection retries) know a network failure
    by: the port answers nothing, so connecting fails, is retried, then raised as URLError."""
    base = mock.api_url
    mock.stop()
    client = web_client(token="xoxb-test", base_url=base)
    with pytest.raises(URLError):
        client.chat_postMessage(channel="C1", text="nobody there")
