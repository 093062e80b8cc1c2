"""Seller API keys: random, high-entropy tokens, stored only as their SHA-256 hash.

(A slow password hash is not needed: keys are 256-bit random, not guessable words.)
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "ak_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()
