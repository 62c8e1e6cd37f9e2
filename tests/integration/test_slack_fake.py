"""The test Slack answers like the real one, seen through slack_sdk's own WebClient: the errors
the app must tell apart, per-tier rate limits with Retry-After, the upload file-count limit and
file stubs. (Tests that rely on the fake rely on these.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.outcomes import classify
from tests.fakes import slack_objects as real
from tests.fakes.slack_api import MockSlackAPI


@pytest.fixture
def mock() -> Iterator[MockSlackAPI]:
    server = MockSlackAPI().start()
    try:
        yield server
    finally:
        server.stop()


def error_of(call: object) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_updates_of_gone_messages_and_revoked_tokens_fail_for_good(mock: MockSlackAPI) -> None:
    client = WebClient(token="xoxb-test", base_url=mock.api_url)
    ts = client.chat_postMessage(channel="C1", text="hi")["ts"]
    assert client.chat_update(channel="C1", ts=ts, text="edited")["ok"]
    mock.delete_message("C1", ts)
    gone = error_of(lambda: client.chat_update(channel="C1", ts=ts, text="again"))
    assert gone.response["error"] == "message_not_found" and classify(gone).permanent
    mock.archive("C1")
    archived = error_of(lambda: client.chat_postMessage(channel="C1", text="x"))
    assert archived.response["error"] == "is_archived" and classify(archived).permanent
    mock.revoke("xoxb-test")
    revoked = error_of(client.auth_test)
    assert revoked.response["error"] == "token_revoked" and classify(revoked).permanent


def test_transient_errors_carry_their_http_status(mock: MockSlackAPI) -> None:
    client = WebClient(token="xoxb-test", base_url=mock.api_url)
    mock.fail("chat.postMessage", "service_unavailable")
    unavailable = error_of(lambda: client.chat_postMessage(channel="C1", text="x"))
    assert unavailable.response.status_code == 503 and not classify(unavailable).permanent
    mock.fail("chat.postMessage", "internal_error")
    internal = error_of(lambda: client.chat_postMessage(channel="C1", text="x"))
    assert internal.response.status_code == 200 and not classify(internal).permanent
    assert client.chat_postMessage(channel="C1", text="x")["ok"]  # scripted once, then fine


def test_each_method_is_limited_by_its_tier_per_workspace(mock: MockSlackAPI) -> None:
    mock.tokens["xoxb-two"] = "T2"
    one = WebClient(token="xoxb-test", base_url=mock.api_url)
    two = WebClient(token="xoxb-two", base_url=mock.api_url)
    mock.enforce_tiers(scale=1 / 60)  # a "minute" lasts an hour: nothing refills during the test
    ts = one.chat_postMessage(channel="C1", text="x")["ts"]
    for _ in range(50):  # chat.update is Tier 3: 50 a minute
        one.chat_update(channel="C1", ts=ts, text="y")
    limited = error_of(lambda: one.chat_update(channel="C1", ts=ts, text="z"))
    failure = classify(limited)
    assert limited.response.status_code == 429 and failure.retry_after and failure.retry_after > 60
    assert one.chat_postEphemeral(channel="C1", user="U1", text="x")["ok"]  # another method
    ts2 = two.chat_postMessage(channel="C2", text="x")["ts"]
    assert two.chat_update(channel="C2", ts=ts2, text="y")["ok"]  # another workspace


def test_an_upload_of_more_than_fourteen_files_fails_as_slack_does(mock: MockSlackAPI) -> None:
    client = WebClient(token="xoxb-test", base_url=mock.api_url)
    files = [{"content": b"x", "filename": f"f{i}.txt"} for i in range(15)]
    failed = error_of(lambda: client.files_upload_v2(channel="C1", file_uploads=files))
    assert failed.response["error"] == "internal_error"
    assert client.files_upload_v2(channel="C1", file_uploads=files[:14])["ok"]


def test_file_stubs_and_files_info(mock: MockSlackAPI) -> None:
    client = WebClient(token="xoxb-test", base_url=mock.api_url)
    hidden = mock.host_file("old.csv", b"a", mode="hidden_by_limit")
    assert set(hidden) == {"id", "mode"} and hidden["mode"] == "hidden_by_limit"
    assert client.files_info(file=hidden["id"])["file"]["mode"] == "hidden_by_limit"
    tomb = mock.host_file("gone.csv", b"a", mode="tombstone")
    assert tomb == {"id": tomb["id"], "mode": "tombstone"}
    deleted = error_of(lambda: client.files_info(file=tomb["id"]))
    assert deleted.response["error"] == "file_deleted"
    stub = mock.host_file("later.csv", b"abc", mode="check_file_info")
    assert stub["file_access"] == "check_file_info" and "url_private" not in stub
    described = client.files_info(file=stub["id"])["file"]
    assert described["name"] == "later.csv" and described["size"] == 3
    assert described["url_private_download"].startswith(mock.base)


@pytest.mark.parametrize("error", sorted(real.PERMANENT_ERRORS))
def test_the_app_takes_each_permanent_error_for_good(mock: MockSlackAPI, error: str) -> None:
    client = WebClient(token="xoxb-test", base_url=mock.api_url)
    mock.fail("chat.update", error)
    assert classify(
        error_of(lambda: client.chat_update(channel="C1", ts="1.1", text="x"))
    ).permanent


@pytest.mark.parametrize("error", sorted(real.TRANSIENT_ERRORS))
def test_the_app_tries_each_transient_error_again(mock: MockSlackAPI, error: str) -> None:
    client = WebClient(token="xoxb-test", base_url=mock.api_url)
    mock.fail("chat.update", error)
    failure = classify(error_of(lambda: client.chat_update(channel="C1", ts="1.1", text="x")))
    assert not failure.permanent
    assert (failure.retry_after is not None) == (error == "ratelimited")
