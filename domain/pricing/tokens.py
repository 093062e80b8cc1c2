"""Quote tokens: HMAC-SHA256 over canonical JSON, so checkout charges exactly what was quoted."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict, cast

from domain.errors import ConfigError, ValidationFailed
from domain.pricing._checks import aware, check
from domain.pricing.quotes import QuotePayload

MAX_TOKEN_CHARS = 65_536


class QuoteTokenRejected(ValidationFailed):
    """code: quote_token_invalid (malformed or tampered) or quote_token_expired."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__({"quote_token": detail}, f"quote token {detail}")
        self.code = code


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, head: str) -> str:
    if len(secret) < 16:
        raise ConfigError("the quote signing secret must be at least 16 bytes")
    return _b64(hmac.new(secret, head.encode("ascii"), hashlib.sha256).digest())


def sign_quote(quote_payload: Mapping[str, object], secret: bytes, now: datetime,
               ttl_s: int = 300) -> str:
    """`base64url(canonical JSON {exp, iat, quote}).base64url(HMAC-SHA256 of the first part)`,
    valid for `ttl_s` seconds from `now`."""
    check(aware(now=now) | ({} if ttl_s > 0 else {"ttl_s": "must be positive"}))
    iat = int(now.timestamp())
    head = _b64(canonical_json({"exp": iat + ttl_s, "iat": iat, "quote": dict(quote_payload)}))
    return f"{head}.{_mac(secret, head)}"


def verify_quote(token: str, secret: bytes, now: datetime) -> dict[str, Any]:
    """The signed payload (as signed: its shape is the signer's); QuoteTokenRejected if the
    token is malformed, was changed, or has expired (at `exp` exactly it has)."""
    check(aware(now=now))
    head, dot, sig = token.partition(".")
    if not dot or len(token) > MAX_TOKEN_CHARS or not head.isascii():
        raise QuoteTokenRejected("quote_token_invalid", "is malformed")
    if not hmac.compare_digest(_mac(secret, head).encode("ascii"), sig.encode("utf-8")):
        raise QuoteTokenRejected("quote_token_invalid", "signature does not match")
    try:
        body = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        exp, payload = int(body["exp"]), body["quote"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise QuoteTokenRejected("quote_token_invalid", "is malformed") from exc
    if now.timestamp() >= exp:
        raise QuoteTokenRejected("quote_token_expired", "has expired")
    if not isinstance(payload, dict):
        raise QuoteTokenRejected("quote_token_invalid", "is malformed")
    return payload


class SignedQuote(QuotePayload):
    """What a quote token signs: the quote, its id and the customer it was made for."""

    quote_id: str
    customer_id: str | None


@dataclasses.dataclass(frozen=True)
class VerifiedQuote:
    """A quote read from a token whose signature and expiry were checked."""

    quote_id: str
    customer_id: str | None
    coupon: str | None
    currency: str
    total_cents: int
    discount_cents: int
    lines: tuple[tuple[int, int], ...]  # (variant id, quantity), as quoted
    signed: SignedQuote  # as signed: stored with the reservation that accepts it

    def summary(self) -> QuoteSummary:
        return {"quote_id": self.quote_id, "currency": self.currency,
                "total_cents": self.total_cents, "discount_cents": self.discount_cents,
                "coupon": self.coupon}


class QuoteSummary(TypedDict):
    """What a reservation made with a quote shows of it."""

    quote_id: str
    currency: str
    total_cents: int
    discount_cents: int
    coupon: str | None


def read_quote(token: str, secret: bytes, now: datetime) -> VerifiedQuote:
    """The quote a token of ours carries (verify_quote, then its shape: QuoteTokenRejected if
    a signed payload is not a quote, e.g. one signed with the same key for something else)."""
    payload = verify_quote(token, secret, now)
    try:
        lines = tuple((int(line["variant_id"]), int(line["quantity"]))
                      for line in payload["lines"])
        q = VerifiedQuote(
            str(payload["quote_id"]), _opt_str(payload.get("customer_id")),
            _opt_str(payload.get("coupon")), str(payload["currency"]),
            int(payload["total_cents"]), int(payload["discount_cents"]), lines,
            cast("SignedQuote", payload))
    except (KeyError, TypeError, ValueError) as exc:
        raise QuoteTokenRejected("quote_token_invalid", "is not a quote") from exc
    return q


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
