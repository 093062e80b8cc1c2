"""The HAProxy ingress's additions to Serve's configuration (serve/haproxy_ingress.py) and
the client address the Gateways count per-address limits by (serve/services.py)."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.requests import Request

from adapters.settings import Settings
from domain.errors import ConfigError
from serve import haproxy_ingress
from serve.services import client_address

# the shape Serve 2.60 writes (abridged): global, defaults, frontends, backends
SERVE_CONFIG = """global
    log 127.0.0.1:514 local0 info
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    errorfile 502 /tmp/x/500.http
    balance leastconn
frontend prometheus
    bind :9101
    mode http
frontend http_frontend
    bind 127.0.0.1:8000
    default_backend default_backend
backend default_backend
    http-request return status 404
listen stats
  bind *:8404
  stats enable
"""


def test_the_forwarded_address_goes_into_the_defaults_section() -> None:
    out = haproxy_ingress.rewrite(SERVE_CONFIG)
    lines = out.split("\n")
    defaults = lines.index("defaults")
    frontend = lines.index("frontend http_frontend")
    assert "    option forwardfor" in lines[defaults + 1:frontend]
    # the side listeners bind where the HTTP port does; everything else is as Serve wrote it
    assert "    bind 127.0.0.1:9101" in lines and "  bind 127.0.0.1:8404" in lines
    assert [x for x in lines if "aisle" not in x and x != "    option forwardfor"] == \
        SERVE_CONFIG.replace("bind :", "bind 127.0.0.1:").replace(
            "bind *:", "bind 127.0.0.1:").split("\n")


@pytest.mark.parametrize("http_bind", ["0.0.0.0:8000", ":8000", "*:8000", "ipv6@:::8000"])
def test_a_frontend_on_every_interface_leaves_the_side_listeners_alone(http_bind: str) -> None:
    config = SERVE_CONFIG.replace("bind 127.0.0.1:8000", f"bind {http_bind}")
    lines = haproxy_ingress.rewrite(config).split("\n")
    assert "    bind :9101" in lines and "  bind *:8404" in lines
    assert "    option forwardfor" in lines


def test_a_reload_of_a_rewritten_file_changes_nothing_and_no_defaults_means_no_change() -> None:
    once = haproxy_ingress.rewrite(SERVE_CONFIG)
    assert haproxy_ingress.rewrite(once) == once
    assert once.count("option forwardfor") == 1
    no_defaults = SERVE_CONFIG.replace("defaults\n", "")
    assert haproxy_ingress.rewrite(no_defaults) == no_defaults
    # a `defaults` that is an indented keyword elsewhere is not the section
    odd = "global\n    defaults\nfrontend f\n"
    assert haproxy_ingress.rewrite(odd) == odd


def test_the_wrapper_rewrites_the_file_after_f_then_becomes_the_named_binary(
        tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(SERVE_CONFIG)
    fake = tmp_path / "fake-haproxy"  # prints its arguments, as HAProxy would get them
    fake.write_text("#!/bin/sh\necho \"$0 $*\"\n")
    fake.chmod(0o755)
    env = {**os.environ, haproxy_ingress.BINARY_ENV: str(fake)}
    done = subprocess.run([sys.executable, haproxy_ingress.__file__, "-db", "-f", str(config),
                           "-sf", "42"], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"{fake} -db -f {config} -sf 42"
    assert "option forwardfor" in config.read_text()


def test_a_replica_that_does_not_answer_is_a_json_503_to_retry_not_a_plain_500(
        tmp_path: Path) -> None:
    """HAProxy's own 502/503/504 (a Gateway replica killed mid-request, none left, too slow)
    come from the file the wrapper writes beside the configuration: the API's JSON error
    shape, 503 with Retry-After. Shown on the HAProxy ray[serve] ships, with a backend that
    refuses connections."""
    config = tmp_path / "haproxy.cfg"
    config.write_text(SERVE_CONFIG)
    lines = haproxy_ingress.rewrite(SERVE_CONFIG, "/x/aisle-503.http").split("\n")
    assert "    errorfile 502 /x/aisle-503.http" in lines
    assert not any("500.http" in x for x in lines)
    binary = haproxy_ingress.bundled_binary()
    if binary is None:
        pytest.skip("no HAProxy here")
    front, dead = haproxy_ingress.free_ports("127.0.0.1", 2)
    config.write_text(f"""global
    maxconn 64
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 0
    errorfile 502 {tmp_path}/500.http
    errorfile 503 {tmp_path}/500.http
    errorfile 504 {tmp_path}/500.http
frontend http_frontend
    bind 127.0.0.1:{front}
    default_backend gateways
backend gateways
    server replica 127.0.0.1:{dead}
""")
    (tmp_path / "500.http").write_text("HTTP/1.1 500 Internal Server Error\r\n\r\n")
    env = {**os.environ, haproxy_ingress.BINARY_ENV: binary}
    proxy = subprocess.Popen([sys.executable, haproxy_ingress.__file__, "-db", "-f",
                              str(config)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        answer = b""
        for _ in range(100):  # until it listens
            try:
                with socket.create_connection(("127.0.0.1", front), timeout=5) as conn:
                    conn.sendall(b"GET /api/v1/cart HTTP/1.1\r\nHost: x\r\n\r\n")
                    while chunk := conn.recv(4096):
                        answer += chunk
                break
            except OSError:
                time.sleep(0.05)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable", answer
        head = head.lower()  # HAProxy sends header names in lower case
        assert b"content-type: application/json" in head and b"retry-after: 1" in head
        assert json.loads(body)["error"]["code"] == "unavailable"
        assert (tmp_path / haproxy_ingress.ERROR_FILE).read_bytes() == \
            haproxy_ingress.ERROR_RESPONSE.encode()
    finally:
        proxy.terminate()
        proxy.wait(10)


def test_an_error_file_that_cannot_be_written_leaves_serves_page_and_haproxy_starts(
        tmp_path: Path) -> None:
    (tmp_path / haproxy_ingress.ERROR_FILE).mkdir()  # in the way: not writable as a file
    assert haproxy_ingress.write_error_file(tmp_path) is None
    config = tmp_path / "haproxy.cfg"
    config.write_text(SERVE_CONFIG)
    fake = tmp_path / "fake-haproxy"
    fake.write_text("#!/bin/sh\necho started\n")
    fake.chmod(0o755)
    env = {**os.environ, haproxy_ingress.BINARY_ENV: str(fake)}
    done = subprocess.run([sys.executable, haproxy_ingress.__file__, "-f", str(config)],
                          env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "started"
    assert "errorfile 502 /tmp/x/500.http" in config.read_text()  # Serve's, kept
    assert "option forwardfor" in config.read_text()
    # writable: written once, the same file on a reload
    other = tmp_path / "ok"
    other.mkdir()
    assert haproxy_ingress.write_error_file(other) == str(other / haproxy_ingress.ERROR_FILE)
    assert haproxy_ingress.write_error_file(other) == str(other / haproxy_ingress.ERROR_FILE)
    assert [p.name for p in other.iterdir()] == [haproxy_ingress.ERROR_FILE]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_haproxy_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """Serve's HAProxy manager actor killed (not shut down in order) used to leave HAProxy
    listening on the HTTP port; now HAProxy gets SIGTERM when its parent dies."""
    fake = tmp_path / "fake-haproxy"  # says its pid, then runs until a signal ends it
    fake.write_text("#!/bin/sh\necho $$ > \"$1\"\nexec sleep 60\n")
    fake.chmod(0o755)
    pid_file = tmp_path / "pid"
    env = {**os.environ, haproxy_ingress.BINARY_ENV: str(fake)}
    parent = subprocess.Popen(  # stands for the manager actor: starts HAProxy, then dies
        [sys.executable, "-c", "import subprocess, sys, time; "
         "subprocess.Popen([sys.executable, *sys.argv[1:]]); time.sleep(2)",
         haproxy_ingress.__file__, str(pid_file)], env=env)
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the wrapper did not start the binary"
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    assert _running(pid)  # the wrapper became the binary, which runs while its parent does
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running(pid):
        assert time.monotonic() < deadline, "HAProxy outlived the process that started it"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_wrapper_refuses_to_run_without_the_real_binary(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != haproxy_ingress.BINARY_ENV}
    done = subprocess.run([sys.executable, haproxy_ingress.__file__, "-v"], env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0 and haproxy_ingress.BINARY_ENV in done.stderr
    env[haproxy_ingress.BINARY_ENV] = haproxy_ingress.__file__  # itself: no loop
    done = subprocess.run([sys.executable, haproxy_ingress.__file__, "-v"], env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0 and haproxy_ingress.BINARY_ENV in done.stderr


def test_the_environment_names_this_wrapper_and_a_real_haproxy() -> None:
    env = haproxy_ingress.environment(drain_s=2.0)
    if env is None:
        pytest.skip("no HAProxy binary on this machine")
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert Path(env["RAY_SERVE_HAPROXY_BINARY_PATH"]).resolve() == \
        Path(haproxy_ingress.__file__).resolve()
    assert os.access(env["RAY_SERVE_HAPROXY_BINARY_PATH"], os.X_OK)  # Serve insists
    real = env[haproxy_ingress.BINARY_ENV]
    assert Path(real).name == "haproxy" and os.access(real, os.X_OK)
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "2.0"
    assert not set(haproxy_ingress.SIDE_PORTS) & set(env)  # Serve's own unless asked


def test_two_services_on_one_machine_get_side_listener_ports_of_their_own() -> None:
    """scripts/train_ranker --dataset both runs two demos: with Serve's fixed 8404 and 9101
    the second HAProxy could not bind them and the demo failed to start."""
    first = haproxy_ingress.environment(side_host="127.0.0.1")
    if first is None:
        pytest.skip("no HAProxy binary on this machine")
    ports = [int(first[k]) for k in haproxy_ingress.SIDE_PORTS]
    assert len(set(ports)) == 2 and all(p > 0 for p in ports)
    with socket.socket() as held:  # a port in use is never chosen
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        for _ in range(20):
            env = haproxy_ingress.environment(side_host="127.0.0.1")
            assert env is not None
            assert taken not in {int(env[k]) for k in haproxy_ingress.SIDE_PORTS}
    # and Serve's replica ports: a block where nothing listens, not the one a service holds
    low = int(env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"])
    assert 30000 <= low < 31000 and low % 100 == 0  # 30000 unless something holds it
    assert int(env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]) == low + 100
    assert 40000 <= int(env["RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT"]) < 41000
    with socket.socket() as replica:  # another cluster's Gateway, as Serve binds it
        replica.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        replica.bind(("127.0.0.1", low))
        replica.listen()
        second = haproxy_ingress.environment(side_host="127.0.0.1")
        assert second is not None
        assert int(second["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"]) > low
    unbindable = haproxy_ingress.environment(side_host="::1")  # not IPv4: Serve's defaults
    assert unbindable is not None and not set(haproxy_ingress.SIDE_PORTS) & set(unbindable)


def _request(peer: str, forwarded: list[str]) -> Request:
    headers = [(b"x-forwarded-for", v.encode()) for v in forwarded]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers,
                    "client": (peer, 50000), "query_string": b""})


LOOPBACK = Settings.from_env({}).trusted_proxies


@pytest.mark.parametrize(("peer", "forwarded", "expect"), [
    ("127.0.0.1", [], "127.0.0.1"),  # no proxy: the peer
    ("127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # HAProxy's entry
    ("127.0.0.1", ["10.9.9.9, 203.0.113.7"], "203.0.113.7"),  # the client's own word before
    ("127.0.0.1", ["10.9.9.9", "203.0.113.7"], "203.0.113.7"),  # two header lines
    ("::1", ["2001:db8::1"], "2001:db8::1"),
    ("198.51.100.2", ["203.0.113.7"], "198.51.100.2"),  # not a trusted peer: ignored
    ("127.0.0.1", ["not-an-address"], "127.0.0.1"),
])
def test_the_client_address_is_the_last_forwarded_entry_only_from_a_trusted_peer(
        peer: str, forwarded: list[str], expect: str) -> None:
    assert client_address(_request(peer, forwarded), LOOPBACK) == expect


def test_behind_a_trusted_load_balancer_the_client_is_left_of_its_entry() -> None:
    """A load balancer (10.0.0.5) before the HAProxy ingress: uvicorn has made the balancer
    the peer; its own entry and the loopback ones are stepped over (the last entry alone
    named the balancer)."""
    trusted = (*LOOPBACK, ipaddress.ip_network("10.0.0.0/8"))
    assert client_address(_request("10.0.0.5", ["10.9.9.9, 203.0.113.7, 10.0.0.5"]),
                          trusted) == "203.0.113.7"
    assert client_address(_request("10.0.0.5", ["10.0.0.7, 10.0.0.5"]), trusted) == "10.0.0.7"
    # a balancer that writes ports
    assert client_address(_request("10.0.0.5", ["203.0.113.7:4711, 10.0.0.5:80"]),
                          trusted) == "203.0.113.7"
    assert client_address(_request("10.0.0.5", ["[2001:db8::1]:4711"]),
                          trusted) == "2001:db8::1"


def test_no_trusted_proxies_means_the_peer_always() -> None:
    assert client_address(_request("127.0.0.1", ["203.0.113.7"]), ()) == "127.0.0.1"


def test_trusted_proxies_setting() -> None:
    default = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert default == LOOPBACK
    s = Settings.from_env({"AISLE_TRUSTED_PROXIES": "10.0.0.0/16, 192.0.2.5"})
    assert s.trusted_proxies == (ipaddress.ip_network("10.0.0.0/16"),
                                 ipaddress.ip_network("192.0.2.5/32"))
    assert Settings.from_env({"AISLE_TRUSTED_PROXIES": "none"}).trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"AISLE_TRUSTED_PROXIES.*'10\.0\.0\.0/99'"):
        Settings.from_env({"AISLE_TRUSTED_PROXIES": "10.0.0.0/99"})


def test_the_state_directories_are_the_nodes_own_and_follow_serves_variables(
        tmp_path: Path) -> None:
    from ray.serve._private import constants  # the defaults must be Serve's own

    for name, default in haproxy_ingress.STATE_PATHS:
        assert getattr(constants, name).rstrip("/") == default.rstrip("/"), name
    assert haproxy_ingress.state_dirs("n1", {}) == [Path("/tmp/haproxy-serve/n1")]
    assert haproxy_ingress.state_dirs("", {}) == []  # never the base directory itself
    moved = {"RAY_SERVE_HAPROXY_SOCKET_PATH": str(tmp_path / "sockets" / "admin.sock"),
             "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(tmp_path / "state")}
    dirs = haproxy_ingress.state_dirs("n1", moved)
    assert dirs == [Path("/tmp/haproxy-serve/n1"), tmp_path / "sockets" / "n1",
                    tmp_path / "state" / "n1"]
    for d in [*dirs[1:], tmp_path / "sockets" / "n2"]:
        d.mkdir(parents=True)
        (d / "admin.sock").write_text("")
    haproxy_ingress.remove_state("n1", moved)
    assert not (tmp_path / "sockets" / "n1").exists()
    assert not (tmp_path / "state" / "n1").exists()
    assert (tmp_path / "sockets" / "n2" / "admin.sock").exists()  # another node's: kept
