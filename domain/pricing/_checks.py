"""Validation shared by the rules: problems by field, raised together."""

from __future__ import annotations

from datetime import datetime

from domain.errors import ValidationFailed


def check(problems: dict[str, str]) -> None:
    if problems:
        raise ValidationFailed(problems)


def aware(**times: datetime) -> dict[str, str]:
    return {k: "must be timezone-aware" for k, t in times.items() if t.tzinfo is None}
