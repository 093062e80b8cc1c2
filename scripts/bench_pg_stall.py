"""scripts/bench_pg_stall --data-dir DIR [--url http://127.0.0.1:8000] [--seconds 15]

What a running demo answers while its PostgreSQL stalls: the demo's postgres processes (those
of --data-dir's embedded server) are stopped (SIGSTOP) for --seconds, and at once: searches for
words not searched before (their prices not in Redis), a product page read before (cached), a
reservation (internal API), POST /api/v1/cart (the client's cart, made by the baseline's: its
row is read) and /health. Each request's status, what it said
(`degraded`, or its error code) and how long it took, against the same kinds of request
with PostgreSQL running, in the same run (the baseline column). Every process is resumed
(SIGCONT) whatever happens. Needs AISLE_INTERNAL_TOKEN (scripts/demo prints it).

And a shopper's cart: an add to it is sent during the stall and given up after 3 s (the
shopper hangs up), while 40 product pages not read before are asked for (they hold the
Gateways' connections to PostgreSQL, as a stall under load does); once PostgreSQL resumes,
the same add is sent again every 0.5 s until it is not refused 409 `cart_busy`: how long
after the resume the cart takes a change again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

WORDS = ("kettle", "boots", "vase", "bench", "router", "thermos", "quilt", "scarf", "alarm",
         "rack", "blender", "sandals", "teapot", "stool", "charger", "flask", "blanket",
         "hoodie", "clock", "shelf")
FILLER = ("black", "steel", "kids", "gift", "set")  # where the pages asked for come from
LOAD_PAGES = 40


def postgres_pids(data_dir: Path) -> list[int]:
    """The embedded server's postmaster (its command line names the data dir) and its
    children."""
    found = subprocess.run(["pgrep", "-f", f"postgres.*{data_dir}"], capture_output=True,
                           text=True).stdout.split()
    pids = {int(p) for p in found}
    for p in list(pids):
        pids |= {int(c) for c in subprocess.run(["pgrep", "-P", str(p)], capture_output=True,
                                                text=True).stdout.split()}
    return sorted(pids)


async def timed(c: httpx.AsyncClient, method: str, url: str,
                **kw: object) -> tuple[str, str, float]:
    t = time.monotonic()
    try:
        r = await c.request(method, url, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return type(exc).__name__, "", time.monotonic() - t
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    said = ((body.get("error") or {}).get("code", "") if r.status_code >= 400
            else "degraded" if body.get("degraded") else "")
    return str(r.status_code), said, time.monotonic() - t


async def requests(c: httpx.AsyncClient, words: list[str], product: str, variant: str,
                   token: str) -> list[tuple[str, tuple[str, str, float]]]:
    named = [(f"search {w}", timed(c, "GET", "/api/v1/products/search", params={"q": w}))
             for w in words]
    named += [
        ("product page", timed(c, "GET", f"/api/v1/products/{product}")),
        ("reserve", timed(c, "POST", "/api/v1/reservations", json={
            "items": [{"variant_id": variant, "quantity": 1}], "ttl_seconds": 60},
            headers={"Authorization": f"Bearer {token}",
                     "Idempotency-Key": "stall-" + secrets.token_hex(6)})),
        ("POST /api/v1/cart", timed(c, "POST", "/api/v1/cart")),
        ("health", timed(c, "GET", "/health"))]
    got = await asyncio.gather(*(aw for _, aw in named))
    return [(n, g) for (n, _), g in zip(named, got, strict=True)]


async def cart_after(url: str, cart: str, variant: str, pages: list[str],
                     resumed: asyncio.Event
                     ) -> tuple[float, int, str, list[tuple[str, float]]]:
    """(s from the resume to the first add to `cart` not refused cart_busy, how many were
    refused, that add's status; the statuses of `pages`, product pages not read before that
    are asked for while the add waits: they hold the Gateways' connections, as a stall under
    load does)."""
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 headers={"X-Cart-Token": cart}) as shopper:
        await asyncio.sleep(1.0)  # PostgreSQL stopped by then; the cart was made before
        add = {"variant_id": variant, "quantity": 1}
        given_up = asyncio.ensure_future(shopper.post("/api/v1/cart/items", json=add,
                                                      timeout=3))
        await asyncio.sleep(0.5)
        loads = await asyncio.gather(given_up, *(
            timed(shopper, "GET", f"/api/v1/products/{p}") for p in pages),
            return_exceptions=True)
        await resumed.wait()
        t, refused = time.monotonic(), 0
        while True:
            try:
                r = await shopper.post("/api/v1/cart/items", json=add)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
                break
            if r.status_code != 409 or r.json()["error"]["code"] != "cart_busy":
                status = str(r.status_code)
                break
            refused += 1
            if time.monotonic() - t > 120:
                status = "409 cart_busy"
                break
            await asyncio.sleep(0.5)
        seen = [(x[0], x[2]) if isinstance(x, tuple) else (type(x).__name__, 0.0)
                for x in loads[1:]]
        return time.monotonic() - t, refused, status, seen


async def run(url: str, data_dir: Path, seconds: float, n: int, token: str) -> int:
    pids = postgres_pids(data_dir)
    if not pids:
        print(f"no postgres process of {data_dir}: is the demo running on it?", file=sys.stderr)
        return 2
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        hit = (await c.get("/api/v1/products/search", params={"q": "headphones"})).json()
        product = hit["results"][0]["product_id"]
        variant = (await c.get(f"/api/v1/products/{product}")).json()["variants"][0][
            "variant_id"]
        words = list(WORDS)
        secrets.SystemRandom().shuffle(words)
        pages: list[str] = []
        for q in FILLER:
            found = (await c.get("/api/v1/products/search",
                                 params={"q": q, "page_size": 100})).json()["results"]
            pages += [x["product_id"] for x in found if x["product_id"] not in pages]
        pages = pages[:LOAD_PAGES]
        baseline = await requests(c, words[:n], product, variant, token)
        async with httpx.AsyncClient(base_url=url) as shopper:
            made = await shopper.post("/api/v1/cart")
        assert made.status_code == 201, made.text
        resumed = asyncio.Event()
        pids = postgres_pids(data_dir)  # with the backends forked since the first look
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        try:
            async def resume() -> None:
                await asyncio.sleep(seconds)
                for p in pids:
                    os.kill(p, signal.SIGCONT)
                resumed.set()
            stalled, _, (free_s, refused, status, seen) = await asyncio.gather(
                requests(c, words[n:2 * n], product, variant, token), resume(),
                cart_after(url, made.json()["cart_token"], variant, pages, resumed))
        finally:
            for p in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGCONT)
        after = (await c.get("/health")).status_code
    print(f"PostgreSQL ({len(pids)} processes) stopped for {seconds:.0f} s; "
          f"/health after: {after}")
    print("| request | running: status, said, s | stalled: status, said, s |")
    print("|---|---|---|")
    for (name, (s0, w0, t0)), (_, (s1, w1, t1)) in zip(baseline, stalled, strict=True):
        kind = "search (new words)" if name.startswith("search") else name
        print(f"| {kind} | {s0} {w0} {t0:.2f} | {s1} {w1} {t1:.2f} |")
    counts = ", ".join(
        f"{len(ts)} x {x} in {min(ts):.2f}-{max(ts):.2f} s"
        for x in sorted({x for x, _ in seen}) for ts in [[t for y, t in seen if y == x]])
    print(f"{len(seen)} product pages not read before, asked for during the stall: {counts}")
    print(f"a cart whose add was given up during the stall took a change {free_s:.1f} s after "
          f"the resume ({refused} adds refused 409 cart_busy before it; that add: {status})")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_pg_stall", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--data-dir", type=Path, required=True,
                   help="the demo's --data-dir (its embedded PostgreSQL is stopped)")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--searches", type=int, default=10, choices=range(1, len(WORDS) // 2 + 1),
                   metavar="1-10")
    a = p.parse_args()
    token = os.environ.get("AISLE_INTERNAL_TOKEN")
    if not token:
        p.error("set AISLE_INTERNAL_TOKEN (scripts/demo prints it)")
    return asyncio.run(run(a.url, a.data_dir.resolve(), a.seconds, a.searches, token))


if __name__ == "__main__":
    sys.exit(main())
