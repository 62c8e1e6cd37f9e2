"""Slack's Web API over kept-alive connections.

slack_sdk's ``WebClient`` opens a new connection for every call (``urllib.request.urlopen``):
a TCP handshake and, against Slack, a TLS handshake each time, one or two round trips (50-150
ms from most places) before the request is even sent, and the CPU of both. A run costs three
calls (the file, its message, the message's update), a create or refine several more.
``KeepAliveWebClient`` is the same client, its retries, errors and rate-limit handling
unchanged, but sends each call on a connection kept open per thread and host, as Slack allows
(HTTP/1.1 keep-alive), and so do file downloads (``fetch``). A connection the server has closed
while it was idle is noticed before anything is sent (it has something to read), or, closed
just then, when the answer turns out empty; the call is then sent once more on a new
connection. A request is never sent again after any of its answer came."""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient

_Key = tuple[str, str, int | None]
_CLOSED = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError)

# Per thread, one connection per host, shared by every client of the process (a workspace's
# client is built per call with its own token; the token travels in each request's headers).
_connections = threading.local()


class KeepAliveWebClient(WebClient):
    """``WebClient`` whose calls reuse one connection per thread and host."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or self.proxy is not None:
            return super()._perform_urllib_http_request_internal(url, req)
        response, body = _exchange(
            url,
            method=req.get_method(),
            body=req.data if isinstance(req.data, bytes) else None,
            headers=dict(req.header_items()),
            timeout=self.timeout,
            context=self.ssl,
        )
        return _answer(url, response, body)


def fetch(
    url: str, *, headers: Mapping[str, str], timeout: float, limit: int
) -> tuple[int, Message, bytes]:
    """GET ``url`` on this thread's kept connection to its host, without following redirects:
    (status, headers, at most ``limit + 1`` bytes of the body; a longer body is not read on,
    and its connection is closed). Raises ``HTTPError`` for 4xx and 5xx, as urllib does."""
    parts = urlsplit(url)
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
        parts.hostname or ""
    ):
        return _fetch_through_proxy(url, headers=headers, timeout=timeout, limit=limit)
    response, body = _exchange(
        url, method="GET", body=None, headers=dict(headers), timeout=timeout, limit=limit + 1
    )
    if response.status >= 400:
        raise HTTPError(url, response.status, response.reason, response.msg, io.BytesIO(body))
    return response.status, response.msg, body


class _Refuse(urllib.request.HTTPRedirectHandler):
    """Redirects come back as errors: the caller checks each hop itself."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_THROUGH_PROXY = urllib.request.build_opener(_Refuse)  # the environment's proxy settings


def _fetch_through_proxy(
    url: str, *, headers: Mapping[str, str], timeout: float, limit: int
) -> tuple[int, Message, bytes]:
    """``fetch`` by urllib, through the proxy the environment names (HTTPS_PROXY, NO_PROXY):
    a new connection each time, as before kept connections."""
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with _THROUGH_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read(limit + 1)
    except HTTPError as exc:
        if 300 <= exc.code < 400:
            with exc:
                return exc.code, exc.headers, b""
        raise


def _exchange(
    url: str,
    *,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout: float,
    context: ssl.SSLContext | None = None,
    limit: int | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request and its answer's body on a kept connection; sent again on a new connection
    once if a reused one turns out closed by the server before any answer came."""
    parts = urlsplit(url)
    key: _Key = (parts.scheme, parts.hostname or "", parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    for attempt in (1, 2):
        connection, reused = _connection(key, timeout=timeout, context=context)
        again = reused and attempt == 1  # a kept connection may have been closed just now
        try:
            try:
                connection.request(method, target, body=body, headers=headers)
            except OSError as exc:
                if again and isinstance(exc, _CLOSED):
                    _drop(key)
                    continue
                # As urllib: a failure to connect or send is a URLError, which slack_sdk's
                # ConnectionErrorRetryHandler retries.
                raise URLError(exc) from exc
            try:
                response = connection.getresponse()
            except http.client.RemoteDisconnected:  # closed before any answer came
                if again:
                    _drop(key)
                    continue
                raise
            data = response.read() if limit is None else response.read(limit)
        except BaseException:
            _drop(key)
            raise
        if response.will_close or not response.isclosed():  # closing, or a body not read out
            _drop(key)
        return response, data
    raise AssertionError("unreachable")


def _connection(
    key: _Key, *, timeout: float, context: ssl.SSLContext | None
) -> tuple[http.client.HTTPConnection, bool]:
    held: dict[_Key, http.client.HTTPConnection] | None = getattr(_connections, "held", None)
    if held is None:
        held = _connections.held = {}
    connection = held.get(key)
    if connection is not None:
        if not _dropped(connection):
            return connection, True
        held.pop(key)
        connection.close()
    scheme, host, port = key
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    held[key] = connection
    return connection, False


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle kept connection was closed by the server: idle, it has nothing to read
    unless its end came (or the server sent something unasked, which makes it unusable too)."""
    sock = connection.sock
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


def _drop(key: _Key) -> None:
    held: dict[_Key, http.client.HTTPConnection] = getattr(_connections, "held", {})
    connection = held.pop(key, None)
    if connection is not None:
        connection.close()


def _answer(url: str, response: http.client.HTTPResponse, body: bytes) -> dict[str, Any]:
    """What ``WebClient`` expects of its transport: a dict for a 2xx or 3xx answer, the
    ``HTTPError`` urllib raises for any other, with the same headers and body."""
    if response.status >= 400:
        raise HTTPError(url, response.status, response.reason, response.msg, io.BytesIO(body))
    if response.msg.get_content_type() == "application/gzip":
        return {"status": response.status, "headers": response.msg, "body": body}
    charset = response.msg.get_content_charset() or "utf-8"
    return {"status": response.status, "headers": response.msg, "body": body.decode(charset)}
