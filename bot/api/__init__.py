"""The seed's HTTP API under ``/api``: a plain WSGI application over the service layer."""

from __future__ import annotations

from bot.api.app import ApiApp, make_api_app

__all__ = ["ApiApp", "make_api_app"]
