"""The bot token goes only to Slack's exact origins (scheme, host and port) on every hop of a
file download; the configured test Slack's http base is the one exception."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.slack.conftest import Stack
from tests.e2e.slack.test_connect_and_grid import file_event
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create
from tests.fakes.slack_api import MockSlackAPI, text_of


@pytest.fixture
def other() -> Iterator[MockSlackAPI]:
    """A second server on the same host as the test Slack, another port: not Slack."""
    server = MockSlackAPI().start()
    try:
        yield server
    finally:
        server.stop()


def test_a_redirect_to_another_port_of_the_slack_host_gets_no_token(
    stack: Stack, other: MockSlackAPI
) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    there = other.host_file("there.csv", PEOPLE)
    assert str(there["url_private_download"]).startswith("http://127.0.0.1:")
    moved = stack.mock.host_file("moved.csv", PEOPLE)
    stack.mock.redirect_file(moved, str(there["url_private_download"]))
    stack.slack.event(file_event(root_ts, moved))
    said = text_of(stack.mock.wait_for("chat.postEphemeral", 1)[-1])
    assert "moved.csv" in said and "not hosted by Slack" in said, said
    assert other.of("file") == []


@pytest.mark.parametrize(
    "url",
    [
        "http://files.slack.com/files-pri/T1-F1/plain.csv",
        "https://files.slack.com:8443/files-pri/T1-F1/plain.csv",
        "https://xoxb@files.slack.com.evil.example/files-pri/T1-F1/plain.csv",
    ],
)
def test_a_file_url_off_slacks_exact_origins_is_refused(stack: Stack, url: str) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    hosted = stack.mock.host_file("plain.csv", PEOPLE)
    event_file = {**hosted, "url_private_download": url, "url_private": url}
    stack.slack.event(file_event(root_ts, event_file))
    said = text_of(stack.mock.wait_for("chat.postEphemeral", 1)[-1])
    assert "plain.csv" in said and "not hosted by Slack" in said, said
