"""The seed's HTTP API under ``/api``: FastAPI over the service layer."""

from __future__ import annotations

from bot.api.app import ApiMount, make_api_app

__all__ = ["ApiMount", "make_api_app"]
