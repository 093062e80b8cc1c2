"""A request that fails because PostgreSQL cannot be reached answers 503
`database_unavailable` with Retry-After (not 500): the client may retry; nothing was written
(every write is one transaction)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest
import uvloop
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from ray.exceptions import ActorDiedError, ActorUnavailableError

from adapters.cache.breaker import Breaker
from adapters.postgres import unavailable
from serve._errors import install_error_handlers
from serve.services import database_up, services_of


def _raising(exc: Exception) -> TestClient:
    """An app with the project's error handlers whose one route (GET and POST /) raises
    `exc`."""
    app = FastAPI()
    install_error_handlers(app)

    @app.api_route("/", methods=["GET", "POST"])
    async def fail() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("exc", [ConnectionRefusedError(111, "refused"),
                                 asyncpg.exceptions.CannotConnectNowError("starting up"),
                                 asyncpg.exceptions.AdminShutdownError("shutting down"),
                                 asyncpg.exceptions.ConnectionDoesNotExistError("gone")])
def test_database_down_is_a_503_with_retry_after(exc: Exception) -> None:
    r = _raising(exc).post("/")
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


def test_after_a_database_failure_requests_that_need_it_answer_503_at_once() -> None:
    """PostgreSQL's breaker: the request that found it down opens it; for a second after,
    the seller, internal and cart APIs answer 503 without trying (no wait for a connection
    each); then the next request tries again."""
    now = [100.0]
    breaker = Breaker(1.0, clock=lambda: now[0], name="PostgreSQL")
    app = FastAPI()
    install_error_handlers(app)
    app.state.services = SimpleNamespace(database=breaker)
    tried: list[int] = []
    down = [True]

    async def needs_database(request: Request) -> None:
        database_up(services_of(request))  # type: ignore[arg-type]

    @app.post("/write", dependencies=[Depends(needs_database)])
    async def write() -> dict[str, bool]:
        tried.append(1)
        if down[0]:
            raise ConnectionRefusedError(111, "refused")
        return {"ok": True}

    client = TestClient(app, raise_server_exceptions=False)
    first = client.post("/write")
    assert first.status_code == 503 and len(tried) == 1 and not breaker.closed
    second = client.post("/write")
    assert second.status_code == 503 and second.headers["Retry-After"] == "1"
    assert second.json()["error"]["code"] == "database_unavailable"
    assert len(tried) == 1  # not tried while the breaker is open
    now[0] += 1.01
    down[0] = False
    assert client.post("/write").json() == {"ok": True} and len(tried) == 2


@pytest.mark.parametrize("exc", [TimeoutError(), ActorDiedError(),
                                 ActorUnavailableError("restarting", None)])
def test_a_timeout_or_a_restarting_actor_is_a_503_to_retry_not_a_500(exc: Exception) -> None:
    """A service the request needs did not answer in time (not the database's timeout,
    which is database_unavailable), or an actor of it is restarting: nothing is known to be
    wrong with the request."""
    r = _raising(exc).get("/")
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    assert r.json()["error"]["code"] == "unavailable"


def test_a_stalled_servers_full_unix_socket_queue_is_database_down(tmp_path: Path) -> None:
    """A stalled server stops accepting: once its Unix socket's queue is full, uvloop (the
    Gateway's event loop) fails a new connection at once with BlockingIOError, which answered
    500 (a probe's 45-s stall of the embedded PostgreSQL: 47 of them, search included)."""
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(tmp_path / ".s.PGSQL.5432"))  # never accepts, as a stopped server
    listening.listen(0)
    queued: list[socket.socket] = []
    try:
        while len(queued) < 64:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            queued.append(c)
            c.connect(str(tmp_path / ".s.PGSQL.5432"))
    except BlockingIOError:
        pass  # full

    async def connect() -> BaseException:
        try:
            await asyncpg.connect(host=str(tmp_path), port=5432, user="x", database="x",
                                  timeout=5)
        except BaseException as exc:  # what the Gateway's handlers get
            return exc
        raise AssertionError("connected to a socket that accepts nothing")

    try:
        failed = uvloop.run(connect())
    finally:
        for c in queued:
            c.close()
        listening.close()
    assert isinstance(failed, BlockingIOError), repr(failed)
    assert unavailable(failed)
    assert not unavailable(BlockingIOError(11, "not through asyncpg"))
    r = _raising(failed).get("/")  # type: ignore[arg-type]
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
