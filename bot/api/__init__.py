"""The seed's HTTP API under ``/api``: FastAPI over the service layer (``bot.api.app``), mounted
by ``bot.api.mount`` and built on its first request."""

from __future__ import annotations

from bot.api.mount import ApiMount, make_api_app

__all__ = ["ApiMount", "make_api_app"]
