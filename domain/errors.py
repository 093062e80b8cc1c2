"""The one exception tree of aisle. Errors carry data; the HTTP layer maps them to statuses.

Every error has a stable string `code` that API clients can rely on.
"""

from __future__ import annotations

from typing import Any


class AisleError(Exception):
    code = "error"

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ConfigError(AisleError):
    """A configuration value is missing or malformed."""

    code = "config_error"


class ValidationFailed(AisleError):
    """Input is invalid; `fields` maps a dotted field path to the reason."""

    code = "validation_failed"

    def __init__(self, fields: dict[str, str], message: str = "request is invalid") -> None:
        super().__init__(message)
        self.fields = fields


class BadRequest(AisleError):
    """The request cannot be read at all (bad encoding, bad JSON)."""

    code = "bad_request"

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class Unauthorized(AisleError):
    code = "unauthorized"


class Forbidden(AisleError):
    code = "forbidden"


class SellerSuspended(Forbidden):
    code = "seller_suspended"


class NotFound(AisleError):
    code = "not_found"


class Conflict(AisleError):
    """The request conflicts with current state (duplicate SKU, duplicate external id)."""

    code = "conflict"

    def __init__(self, message: str, code: str = "conflict", fields: dict[str, str] | None = None,
                 **data: Any) -> None:
        super().__init__(message, **data)
        self.code = code
        self.fields = fields or {}


class GenerationRefused(Conflict):
    """A rebuilt index generation failed its checks (`problems`): not made live."""

    code = "generation_refused"  # on the class too: raised in an actor, Ray's copy reads it

    def __init__(self, message: str, generation: str = "",
                 problems: list[str] | None = None) -> None:
        super().__init__(message, "generation_refused", generation=generation,
                         problems=problems or [])


class RebuildUnderWay(Conflict):
    """A full index build is running (one at a time)."""

    code = "rebuild_under_way"

    def __init__(self, message: str, generation: str = "") -> None:
        super().__init__(message, "rebuild_under_way", generation=generation)


class VersionConflict(Conflict):
    """Optimistic concurrency: the client's version is not the current one."""

    def __init__(self, current_version: int, sent_version: int, what: str = "product") -> None:
        super().__init__(
            f"{what} was changed: you sent version {sent_version}, current is {current_version}",
            code="version_conflict",
            current_version=current_version,
        )
        self.current_version = current_version


class PreconditionRequired(AisleError):
    code = "version_required"


class PayloadTooLarge(AisleError):
    code = "payload_too_large"


class RateLimited(AisleError):
    """Too many requests from this client in the current window (HTTP 429)."""

    code = "rate_limited"

    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(f"more than {limit} requests a minute: retry in {retry_after_s} s",
                         retry_after_s=retry_after_s)
        self.limit = limit
        self.retry_after_s = retry_after_s


class Unavailable(AisleError):
    """A dependency did not answer in time; the outcome may be unknown: retry with the same
    idempotency key."""

    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    """PostgreSQL failed a moment ago: the request was not tried (nothing was changed)."""

    code = "database_unavailable"
