"""Helper processes for the benchmarks: `fakes` (mock Slack + stalled model), `bare` (a bare
Bolt ``AsyncApp`` with a no-op ack on the same server stack as Taskbot: Bolt's ASGI handler on
uvicorn, configured as ``python -m bot serve`` configures it) and
`drill-fakes` (mock Slack + a model that answers the same valid code to every request, for
bench/drill.py; it exits on its own when its parent dies or after ``lifetime`` seconds)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fakes(first_code_file: str, stall: float) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer, answer_json
    from tests.fakes.slack_api import MockSlackAPI

    mock = MockSlackAPI().start()
    model = FakeOpenAIServer().start()
    model.reply(answer_json(code=Path(first_code_file).read_text(), name="busy"))
    for _ in range(50_000):
        model.stall(stall)
    print(mock.api_url, model.base_url, flush=True)
    while True:
        time.sleep(3600)


def drill_fakes(code_file: str, lifetime: float) -> None:
    import os

    from tests.fakes.openai_server import FakeOpenAIServer, answer_json
    from tests.fakes.slack_api import MockSlackAPI

    parent = os.getppid()
    mock = MockSlackAPI().start()
    model = FakeOpenAIServer().start()
    model.reply_by_default(
        answer_json(code=Path(code_file).read_text(), name="echo", title="Echo the input")
    )
    print(mock.api_url, model.base_url, mock.base, flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.5)


def bare(port: int, secret: str, api_url: str) -> None:
    from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.web import listen, run_server, uvicorn_server

    app = AsyncApp(
        signing_secret=secret, client=AsyncWebClient(token="xoxb-test", base_url=api_url)
    )

    @app.command("/task")
    async def noop(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)
    run_server(uvicorn_server(handler), listen(host="127.0.0.1", port=port))  # type: ignore[arg-type]


if __name__ == "__main__":
    if sys.argv[1] == "fakes":
        fakes(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "drill-fakes":
        drill_fakes(sys.argv[2], float(sys.argv[3]))
    else:
        bare(int(sys.argv[2]), sys.argv[3], sys.argv[4])
