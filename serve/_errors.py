"""HTTP error responses: every error is `{"error": {"code", "message", "fields"}}`.

Domain errors map to statuses here and only here. `BodyGuard` rejects oversized bodies (413)
and bodies that are not UTF-8 (400) before any route sees them.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import ActorUnavailableError, RayActorError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.postgres import unavailable
from domain import errors

log = logging.getLogger("aisle.http")

STATUS: dict[type[errors.AisleError], int] = {
    errors.ValidationFailed: 422,
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.PreconditionRequired: 428,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}


def error_body(code: str, message: str, fields: dict[str, str] | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


def error_response(exc: errors.AisleError) -> JSONResponse:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)
    fields = getattr(exc, "fields", None)
    headers = ({"WWW-Authenticate": "Bearer"} if status == 401
               else {"Retry-After": "1"} if status == 503 else None)
    if isinstance(exc, errors.RateLimited):
        wait = str(exc.retry_after_s)
        headers = {"Retry-After": wait, "RateLimit-Limit": str(exc.limit),
                   "RateLimit-Remaining": "0", "RateLimit-Reset": wait}
    return JSONResponse(error_body(exc.code, exc.message, fields, **exc.data), status_code=status,
                        headers=headers)


_TYPE_TAG = re.compile(r"^(str|int|float|bool|list|dict|none|function-\w+)(\[.*\])?$")


def _field_key(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:] if isinstance(p, int) or not _TYPE_TAG.match(str(p))]
    return ".".join(parts) if parts else str(loc[0])


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errs):
        detail = next(e for e in errs if e.get("type") == "json_invalid")
        loc = tuple(detail.get("loc", ()))
        why = str((detail.get("ctx") or {}).get("error") or "not JSON")
        at = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        message = f"body is not valid JSON: {why}{at}"
        return JSONResponse(error_body("invalid_json", message, {"body": message}),
                            status_code=400)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    whole = [e for e in errs if tuple(e.get("loc", ())) == ("body",)
             and e.get("type") in ("dict_type", "model_attributes_type", "model_type")]
    if whole and kind != "application/json" and not kind.endswith("+json"):
        message = (f"the body must be JSON (Content-Type: application/json), "
                   f"not {kind or 'without a Content-Type'}")
        return JSONResponse(error_body("unsupported_media_type", message,
                                       {"Content-Type": message}), status_code=415)
    fields: dict[str, str] = {}
    for e in errs:
        fields.setdefault(_field_key(tuple(e.get("loc", ("body",)))), _message(e))
    return JSONResponse(error_body("validation_failed", "request is invalid", fields),
                        status_code=422)


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.AisleError)
    return error_response(exc)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    if unavailable(exc):  # the database is down: nothing was written (one transaction)
        log.warning("PostgreSQL unavailable on %s %s: %r", request.method, request.url.path,
                    exc)
        breaker = getattr(getattr(request.app.state, "services", None), "database", None)
        if breaker is not None:  # the next requests that need it answer 503 at once a while
            breaker.failed(f"{request.method} {request.url.path}", exc)
        said = ("the database did not answer in time: a change may or may not have been "
                "made" if isinstance(exc, TimeoutError)
                else "the database cannot be reached: nothing was changed")
        return JSONResponse(error_body(
            "database_unavailable", f"{said}; retry shortly (with the same Idempotency-Key "
            "where the route takes one)"), status_code=503, headers={"Retry-After": "1"})
    if isinstance(exc, TimeoutError | RayActorError | ActorUnavailableError):
        # a service it needs did not answer in time, or an actor of it is restarting
        log.warning("unavailable on %s %s: %r", request.method, request.url.path, exc)
        return JSONResponse(error_body(
            "unavailable", "a part of the service this needs did not answer in time (or is "
            "restarting); retry shortly "
            "(with the same Idempotency-Key where the route takes one)"),
            status_code=503, headers={"Retry-After": "1"})
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(errors.AisleError, _domain_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


DEFAULT_MAX_BODY = 1 << 20
DEFAULT_UPLOAD_BYTES = 10 << 20
MODEL_BODY_BYTES = 64 << 20  # a ranker's registration: its artifact, base64 (up to 50 MB)
_UPLOAD_PATH = re.compile(r"^/api/v1/seller/products/[0-9]+/images$")
_MODEL_PATH = "/api/v1/internal/rankers"


class BodyGuard:
    """Buffers request bodies of writes; 413 past `limit` bytes (AISLE_MAX_BODY_BYTES), 400
    if not UTF-8. Image uploads (multipart to .../images) may be binary, up to
    `upload_limit` bytes (AISLE_IMAGE_MAX_BYTES, plus room for the form); a ranker's
    registration with the internal token, up to MODEL_BODY_BYTES (a model of a few hundred
    trees is over a megabyte)."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY,
                 upload_limit: int = DEFAULT_UPLOAD_BYTES,
                 internal_token: str | None = None) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit + (64 << 10)
        self.internal = internal_token.encode() if internal_token else None

    def _model(self, path: str, headers: dict[bytes, bytes]) -> bool:
        """A ranker's registration carrying the internal token (read as the route reads it:
        any case of "Bearer", spaces around the token)."""
        if self.internal is None or path != _MODEL_PATH:
            return False
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.internal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # an app under a route prefix: its own path
            path = path[len(root):]
        upload = (scope["method"] == "POST" and _UPLOAD_PATH.match(path) is not None
                  and headers.get(b"content-type", b"").startswith(b"multipart/form-data"))
        limit = (self.upload_limit if upload
                 else max(self.limit, MODEL_BODY_BYTES) if scope["method"] == "POST"
                 and self._model(path, headers) else self.limit)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, "payload_too_large", f"body exceeds {limit} bytes")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _send_error(send, 413, "payload_too_large", f"body exceeds {limit} bytes")
                return
        try:
            if not upload:
                bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            await _send_error(send, 400, "invalid_encoding",
                              f"body is not valid UTF-8 (byte {exc.start})")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    payload = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
