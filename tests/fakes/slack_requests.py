"""Signed requests into ``/slack/events``, the way Slack sends them."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

_ids = itertools.count(1)


class SlackSender:
    def __init__(self, url: str, secret: str, *, response_base: str) -> None:
        self.url = url
        self.verifier = SignatureVerifier(secret)
        self.response_base = response_base

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sig = signature or self.verifier.generate_signature(timestamp=ts, body=body)
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sig,
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def command(
        self,
        text: str,
        *,
        team: str = "T1",
        channel: str = "C1",
        user: str = "U1",
        trigger_id: str | None = None,
        response_name: str | None = None,
        enterprise: str | None = None,
        channel_name: str = "general",
        **extra: Any,
    ) -> tuple[int, str]:
        """A slash command. In a 1:1 DM ``channel_name`` is "directmessage"; on Enterprise Grid
        the form adds ``enterprise_id`` and ``enterprise_name``."""
        n = next(_ids)
        grid = {"enterprise_id": enterprise, "enterprise_name": "Org"} if enterprise else {}
        form = {
            **grid,
            "is_enterprise_install": "false",
            "token": "legacy",
            "team_id": team,
            "team_domain": "test",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": "someone",
            "command": "/task",
            "text": text,
            "api_app_id": "A1",
            "response_url": f"{self.response_base}/response/{response_name or f'cmd{n}'}",
            "trigger_id": trigger_id or f"trigger.{n}",
        }
        return self.post(urlencode(form), "application/x-www-form-urlencoded", **extra)

    def event(
        self,
        event: dict[str, Any],
        *,
        team: str = "T1",
        event_id: str | None = None,
        retry_num: int | None = None,
        installed_team: str | None = None,
        enterprise: str | None = None,
        shared: bool = False,
    ) -> tuple[int, str]:
        """An Events API envelope. In a Slack Connect channel (``shared``) the outer ``team_id``
        can be the other organisation's: the installation it is delivered for is
        ``authorizations[0]`` (``installed_team``, default ``team``)."""
        installed = installed_team or team
        body = {
            "token": "legacy",
            "team_id": team,
            "enterprise_id": enterprise,
            "context_team_id": installed,
            "context_enterprise_id": enterprise,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_ids)}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [
                {
                    "enterprise_id": enterprise,
                    "team_id": installed,
                    "user_id": "UBOT",
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": shared,
            "event_context": f"4-ctx{next(_ids)}",
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(body), "application/json", headers=headers)

    def interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        return self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    def button(
        self,
        task_id: str,
        *,
        team: str = "T1",
        channel: str = "C1",
        user: str = "U1",
        action_id: str = "run_task",
        enterprise: str | None = None,
    ) -> tuple[int, str]:
        """A block_actions payload; on Enterprise Grid the enterprise is only ``team.enterprise_id``
        (and ``user.team_id``), as real payloads carry it."""
        n = next(_ids)
        team_obj: dict[str, Any] = {"id": team, "domain": "test"}
        if enterprise:
            team_obj["enterprise_id"], team_obj["enterprise_name"] = enterprise, "Org"
        return self.interactive(
            {
                "type": "block_actions",
                "team": team_obj,
                "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
                "is_enterprise_install": False,
                "api_app_id": "A1",
                "trigger_id": f"trigger.b{n}",
                "channel": {"id": channel},
                "container": {"type": "message", "channel_id": channel, "message_ts": "1.1"},
                "response_url": f"{self.response_base}/response/button{n}",
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "value": task_id,
                        "action_ts": f"{n}.0",
                    }
                ],
            }
        )

    def view_button(
        self, value: str, *, action_id: str, team: str = "T1", user: str = "U1"
    ) -> tuple[int, str]:
        """A block_actions payload from a button on the app's Home tab: a view container, no
        channel and no response_url."""
        n = next(_ids)
        return self.interactive(
            {
                "type": "block_actions",
                "team": {"id": team, "domain": "test"},
                "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
                "is_enterprise_install": False,
                "api_app_id": "A1",
                "trigger_id": f"trigger.h{n}",
                "container": {"type": "view", "view_id": f"VH{user}"},
                "view": {"id": f"VH{user}", "type": "home", "team_id": team, "blocks": []},
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": f"home_{value}",
                        "value": value,
                        "action_ts": f"{n}.0",
                    }
                ],
            }
        )

    def message_shortcut(
        self,
        callback_id: str,
        message: dict[str, Any],
        *,
        channel: str,
        team: str = "T1",
        user: str = "U1",
    ) -> tuple[int, str]:
        """A message shortcut (``message_action``) on ``message`` in ``channel``."""
        n = next(_ids)
        return self.interactive(
            {
                "type": "message_action",
                "callback_id": callback_id,
                "trigger_id": f"trigger.s{n}",
                "action_ts": f"{n}.0",
                "team": {"id": team, "domain": "test"},
                "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
                "channel": {"id": channel, "name": "somewhere"},
                "is_enterprise_install": False,
                "message_ts": message.get("ts"),
                "message": message,
                "response_url": f"{self.response_base}/response/shortcut{n}",
                "token": "legacy",
            }
        )

    def suggest(
        self,
        view: dict[str, Any],
        *,
        action_id: str,
        block_id: str,
        value: str = "",
        team: str = "T1",
        user: str = "U1",
    ) -> tuple[int, str]:
        """A ``block_suggestion`` from an external_select in a modal: Slack asks for options."""
        return self.interactive(
            {
                "type": "block_suggestion",
                "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
                "container": {"type": "view", "view_id": view.get("id", "V1")},
                "api_app_id": "A1",
                "token": "legacy",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "team": {"id": team, "domain": "test"},
                "view": {**view, "team_id": team, "app_installed_team_id": team},
            }
        )

    def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, team: str = "T1", user: str = "U1"
    ) -> tuple[int, str]:
        """A ``view_submission`` of ``view`` (as views.open was given it) with ``values``."""
        n = next(_ids)
        return self.interactive(
            {
                "type": "view_submission",
                "team": {"id": team, "domain": "test"},
                "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
                "is_enterprise_install": False,
                "api_app_id": "A1",
                "trigger_id": f"trigger.v{n}",
                "view": {
                    **view,
                    "id": f"V{n}",
                    "hash": f"h{n}",
                    "team_id": team,
                    "app_id": "A1",
                    "app_installed_team_id": team,
                    "bot_id": "BBOT",
                    "state": {"values": values},
                },
            }
        )

    def submit_files(
        self,
        private_metadata: str,
        files: list[dict[str, Any]],
        *,
        team: str = "T1",
        user: str = "U1",
        installed_team: str | None = None,
        enterprise: str | None = None,
    ) -> tuple[int, str]:
        """A view_submission payload. From a Slack Connect channel ``team`` is the submitter's
        organisation; the workspace the app is installed in is ``view.app_installed_team_id``."""
        n = next(_ids)
        installed = installed_team or team
        team_obj: dict[str, Any] = {"id": team, "domain": "test"}
        if enterprise:
            team_obj["enterprise_id"], team_obj["enterprise_name"] = enterprise, "Org"
        return self.interactive(
            {
                "type": "view_submission",
                "team": team_obj,
                "user": {"id": user, "username": "someone", "name": "someone", "team_id": team},
                "is_enterprise_install": False,
                "api_app_id": "A1",
                "trigger_id": f"trigger.v{n}",
                "view": {
                    "id": f"V{n}",
                    "type": "modal",
                    "callback_id": "run_with_file",
                    "private_metadata": private_metadata,
                    "hash": f"h{n}",
                    "team_id": installed,
                    "app_id": "A1",
                    "app_installed_team_id": installed,
                    "bot_id": "BBOT",
                    "state": {
                        "values": {"input_files": {"files": {"type": "file_input", "files": files}}}
                    },
                },
            }
        )
