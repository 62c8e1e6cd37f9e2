"""``python -m bot task --server URL --token T ...``: the same commands against a running
server's API, acting as the token's owner (``TASKBOT_URL``, ``TASKBOT_TOKEN``)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from bot.roles.cli_run import for_terminal
from storage.kinds import RunStatus

TIMEOUT = 30.0
WAIT_SECONDS = 20.0  # per request, well within TIMEOUT (the server allows up to 30)
REMOTE_ACTIONS = ("list", "show", "run", "create", "refine", "delete", "usage")


class RemoteError(Exception):
    """The server's answer in the one error shape, or why it could not be reached."""


def wanted(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(getattr(args, "token", None) or env.get("TASKBOT_TOKEN"))


class Client:
    def __init__(self, server: str, token: str) -> None:
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RemoteError(f"--server must be an http(s) URL, got {server[:80]!r}")
        self.base = server.rstrip("/")
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, *, upload: tuple[str, bytes] | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if upload is not None:
            boundary = f"taskbot-{secrets.token_hex(12)}"
            name = upload[0].replace('"', "_").replace("\r", "_").replace("\n", "_")
            data = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode()
                + upload[1]
                + f"\r\n--{boundary}--\r\n".encode()
            )
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                message = f"{error['message']} ({exc.code} {error['code']})"
            except (ValueError, KeyError, TypeError):
                message = f"the server answered {exc.code}"
            raise RemoteError(message) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach {self.base}: {reason}") from None


def run_remote(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    token = args.token or os.environ.get("TASKBOT_TOKEN", "")
    server = args.server or os.environ.get("TASKBOT_URL", "")
    if not server:
        err.write("error: a token needs a server: add --server URL (or set TASKBOT_URL)\n")
        return 2
    if args.action not in REMOTE_ACTIONS:
        err.write(f"error: `task {args.action}` works only on this machine, not with a token\n")
        return 2
    try:
        return _act(Client(server, token), args, out)
    except RemoteError as exc:
        err.write(f"error: {for_terminal(str(exc))}\n")
        return 1


def _quote(ref: str) -> str:
    return urllib.parse.quote(ref, safe="")


def _act(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action
    if action == "list":
        for t in client.call("GET", "/api/tasks?limit=100")["tasks"]:
            version = f"v{t['current_version']}" if t.get("current_version") else "-"
            name = t.get("name") or t.get("desired_action", "")[:40]
            out.write(
                for_terminal(
                    f"{t['id']}  {version:>4}  {t['state']:<10}  "
                    f"{t.get('last_run_status') or '-':<9}  {name}"
                )
                + "\n"
            )
        return 0
    if action == "show":
        query = f"?version={args.version}" if args.version else ""
        detail = client.call("GET", f"/api/task/{_quote(args.id)}{query}")
        out.write(for_terminal(f"{detail['id']}\n# {detail.get('name')} (v{detail['version']})\n"))
        out.write(for_terminal(detail["code"]) + "\n")
        return 0
    if action == "create":
        body = {"desired_action": args.description, "task_type": args.task_type}
        detail = client.call("POST", "/api/task/create", body)
        out.write(f"{detail['id']}\n")
        return 0
    if action == "refine":
        result = client.call(
            "POST", f"/api/task/{_quote(args.id)}/refine", {"feedback": args.feedback}
        )
        out.write(for_terminal(json.dumps(result, indent=2, ensure_ascii=False)) + "\n")
        return 0
    if action == "delete":
        client.call("DELETE", f"/api/task/{_quote(args.id)}")
        out.write(f"deleted {args.id}\n")
        return 0
    if action == "usage":
        report = client.call("GET", f"/api/usage?days={args.days}")
        out.write(for_terminal(json.dumps(report, indent=2)) + "\n")
        return 0
    return _run(client, args, out)


def _run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {}
    upload = None
    if args.text is not None:
        body["input_text"] = args.text
    elif args.input is not None:
        path: Path = args.input
        try:
            upload = (path.name, path.read_bytes())
        except OSError as exc:
            raise RemoteError(f"cannot read {path}: {exc.strerror}") from None
    query = f"?version={args.version}" if args.version else ""
    accepted = client.call("POST", f"/api/task/{_quote(args.id)}/run{query}", body, upload=upload)
    run_path = accepted["links"]["run"]
    deadline = time.monotonic() + 600
    # The server answers as soon as the run ends (woken by the run's event there), or after
    # WAIT_SECONDS: then ask again, until the deadline.
    run = client.call("GET", f"{run_path}?wait={WAIT_SECONDS:g}")
    while not run.get("final"):
        if time.monotonic() > deadline:
            raise RemoteError(f"run {accepted['run_id']} is still {run.get('status')}")
        run = client.call("GET", f"{run_path}?wait={WAIT_SECONDS:g}")
    value = run.get("result")
    if value is not None:
        text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
        out.write(for_terminal(text) + ("" if text.endswith("\n") else "\n"))
    if run["status"] != RunStatus.SUCCEEDED:
        failure = run.get("failure") or {}
        detail = failure.get("message") or failure.get("killed_reason") or failure.get("type")
        raise RemoteError(f"run {run['run_id']} {run['status']}: {detail or 'no detail'}")
    return 0
