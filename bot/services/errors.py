"""The small family of errors services raise; each edge turns them into its own answer."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a user can cause or meet; ``str()`` is a short, clear sentence."""

    code = "error"


class NotFound(ServiceError):
    code = "not_found"


class AmbiguousId(ServiceError):
    code = "ambiguous_id"


class InvalidInput(ServiceError):
    code = "invalid_input"


class NotAllowed(ServiceError):
    code = "not_allowed"


class NotReady(ServiceError):
    """The task has no working version yet (still generating, or generation failed)."""

    code = "not_ready"


class ModelUnavailable(ServiceError):
    """The model server could not be reached or kept failing after the SDK's retries."""

    code = "model_unavailable"
    requests = 0  # HTTP requests made before giving up (they count as spent)


class GenerationFailed(ServiceError):
    """The model's answers stayed invalid after every repair round."""

    code = "generation_failed"

    def __init__(self, message: str, *, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class ChecksFailed(ServiceError):
    """The version's self-checks never passed: it was kept as a draft, not made current."""

    code = "checks_failed"

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


class AlreadyExists(ServiceError):
    """Writing would replace something the user made or kept (e.g. an earlier export)."""

    code = "already_exists"


class BudgetExceeded(ServiceError):
    """A workspace's or user's budget for the day is spent; nothing was started."""

    code = "budget_exceeded"


class Unauthorized(ServiceError):
    """No valid credentials: an unknown, expired or revoked token."""

    code = "unauthorized"
