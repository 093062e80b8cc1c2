"""A request that fails because PostgreSQL cannot be reached answers 503
`database_unavailable` with Retry-After (not 500): the client may retry; nothing was written
(every write is one transaction)."""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.postgres import unavailable
from serve._errors import install_error_handlers


@pytest.mark.parametrize("exc", [ConnectionRefusedError(111, "refused"),
                                 asyncpg.exceptions.CannotConnectNowError("starting up"),
                                 asyncpg.exceptions.AdminShutdownError("shutting down"),
                                 asyncpg.exceptions.ConnectionDoesNotExistError("gone")])
def test_database_down_is_a_503_with_retry_after(exc: Exception) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    async def write() -> None:
        raise exc

    r = TestClient(app, raise_server_exceptions=False).post("/write")
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "database_unavailable"


def test_other_failures_stay_500_and_are_not_database_down() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/bug")
    async def bug() -> None:
        raise KeyError("a bug")

    r = TestClient(app, raise_server_exceptions=False).get("/bug")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert not unavailable(KeyError("x")) and not unavailable(
        asyncpg.exceptions.UniqueViolationError("dup"))
