"""What a request may cost before it is authenticated: an ASGI middleware around the whole
web app (Slack, the API, /healthz), whatever framework serves each part.

- A Slack POST without Slack's signature headers, or with a timestamp more than five minutes
  off, is answered 401 before its body is read; an API or MCP request without a bearer token
  this server knows (``API_TOKEN``, or a personal token whose digest is stored: one indexed
  read, off the event loop) likewise (in the API's error shape). Whether a known personal
  token is revoked, expired or lacks a scope the API itself answers, and audits.
- Every body is bounded: a declared Content-Length over the path's limit is answered 413 at
  once; an undeclared (chunked) or lying one is counted while it streams and answered 413 as
  soon as it passes the limit. The body is buffered here (at most the limit) and handed on in
  one piece, so nothing behind this holds more. A refusal closes the connection: the rest of
  an oversized body is never read.

Limits: Slack's requests are small (a message's text is cut at 40,000 characters, a message
holds 50 blocks, a modal 100, each text at most 3,000); the largest, an interaction carrying
a modal's whole view and state, form-encoded, stays well under 1 MiB, and Bolt for JavaScript
refuses Slack bodies over 4 MB. 2 MiB is kept for Slack; the API takes an input file
(``SANDBOX_MAX_INPUT_MB``) plus room for the multipart framing; anything else 64 KiB.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SLACK_BODY_LIMIT = 2 * 2**20
OTHER_BODY_LIMIT = 64 * 1024
MULTIPART_ROOM = 256 * 1024
SLACK_SKEW_SECONDS = 300  # what Slack's signature check allows (and Bolt enforces)


PERSONAL_PREFIX = b"tbp_"  # bot.services.tokens.PREFIX


@dataclass(frozen=True)
class EdgeLimits:
    api_body_bytes: int
    api_token: str = ""  # the operator's; with no personal tokens either, nothing is checked
    # Whether a personal token is one this server issued (revoked or expired included), or
    # None where there are no personal tokens (the API is off without API_TOKEN: its 404).
    known_token: Callable[[str], bool] | None = None
    slack_body_bytes: int = SLACK_BODY_LIMIT
    other_body_bytes: int = OTHER_BODY_LIMIT

    @classmethod
    def for_input(
        cls,
        *,
        max_input_bytes: int,
        api_token: str,
        known_token: Callable[[str], bool] | None = None,
    ) -> EdgeLimits:
        return cls(
            api_body_bytes=max_input_bytes + MULTIPART_ROOM,
            api_token=api_token,
            known_token=known_token,
        )


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, *, challenge: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge


async def refuse(send: Send, refused: Refused) -> None:
    """The answer, in the API's error shape, closing the connection."""
    body = json.dumps({"error": {"code": refused.code, "message": refused.message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if refused.challenge:
        headers.append((b"www-authenticate", refused.challenge.encode()))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(bytes(name).lower(), bytes(value))
    return found


def _invalid_token() -> Refused:
    return Refused(
        401,
        "unauthorized",
        "The bearer token is not valid.",
        challenge='Bearer realm="taskbot", error="invalid_token"',
    )


def _is_api(path: str) -> bool:
    """The API and the MCP server: bearer tokens, input files."""
    return path in ("/api", "/mcp") or path.startswith(("/api/", "/mcp/"))


class RequestLimits:
    """The middleware; ``limits`` as built from the settings."""

    def __init__(
        self, app: ASGIApp, *, limits: EdgeLimits, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.limits = limits
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)  # once per request: Slack's acks pass through here
        try:
            limit, personal = self._admit(scope, headers)
            if personal is not None:
                await self._check_personal(personal)
            body = await self._body(headers, receive, limit)
        except Refused as refused:
            await refuse(send, refused)
            return
        await self.app(scope, _replay(body, receive), send)

    def _admit(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, bytes | None]:
        """The body limit for this request and a personal token still to look up, or
        ``Refused`` on what its headers show."""
        path: str = scope.get("path", "")
        if path.startswith("/slack/"):
            if scope.get("method") == "POST":
                self._check_slack(headers)
            return self.limits.slack_body_bytes, None
        if _is_api(path):
            return self.limits.api_body_bytes, self._check_bearer(path, headers)
        return self.limits.other_body_bytes, None

    async def _check_personal(self, token: bytes) -> None:
        known = self.limits.known_token
        given = token.decode("ascii", "replace")
        if known is None or not await asyncio.to_thread(known, given):
            raise _invalid_token()

    def _check_slack(self, headers: dict[bytes, bytes]) -> None:
        signature = headers.get(b"x-slack-signature", b"")
        stamp = headers.get(b"x-slack-request-timestamp", b"").strip()
        if not signature.startswith(b"v0=") or not stamp.isdigit():
            raise Refused(401, "unauthorized", "The request is not signed by Slack.")
        if abs(self._clock() - int(stamp)) > SLACK_SKEW_SECONDS:
            raise Refused(401, "unauthorized", "The request's Slack timestamp is too old.")

    def _check_bearer(self, path: str, headers: dict[bytes, bytes]) -> bytes | None:
        """``Refused`` without a token that may be valid; a personal token to look up."""
        token, personal = self.limits.api_token, self.limits.known_token is not None
        if not (token or personal) or path == "/api/openapi.json":
            return None  # the API answers these itself: off (404), or its public description
        scheme, _, given = headers.get(b"authorization", b"").strip().partition(b" ")
        given = given.strip()
        if scheme.lower() != b"bearer" or not given:
            raise Refused(
                401,
                "unauthorized",
                "Send `Authorization: Bearer <token>` (API_TOKEN, or a personal token from "
                "`/task token`).",
                challenge='Bearer realm="taskbot"',
            )
        if token and hmac.compare_digest(given, token.encode("utf-8")):
            return None
        if personal and given.startswith(PERSONAL_PREFIX) and len(given) <= 64:
            return given
        raise _invalid_token()

    async def _body(self, headers: dict[bytes, bytes], receive: Receive, limit: int) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise Refused(400, "bad_request", "The Content-Length header is not a number.")
            if int(declared) > limit:
                raise _too_large(limit)
        buffer = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(400, "bad_request", "The client went away mid-request.")
            buffer += message.get("body", b"")
            if len(buffer) > limit:
                raise _too_large(limit)
            if not message.get("more_body", False):
                return bytes(buffer)


def _too_large(limit: int) -> Refused:
    return Refused(413, "too_large", f"The request body is over the limit of {limit} bytes.")


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the connection's own messages (a
    disconnect, for apps that wait on one)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
