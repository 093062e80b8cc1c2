"""What Ray pays to pickle partition commands and replies: the typed dataclasses
(domain/inventory_commands.py) against the string-keyed dicts they replaced, a ray.cloudpickle
round trip each, in this process. Prints microseconds per item and the ratio.

    scripts/bench_commands [--rounds 20000]
"""

from __future__ import annotations

import argparse
import pickle
import time

import ray.cloudpickle as cloudpickle

from domain.inventory import Item
from domain.inventory_commands import Done, ReservationView, Reserve

CART = "r0123456789abcdef0123.0001"


def per_item_us(obj: list[object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        pickle.loads(cloudpickle.dumps(obj))
    return (time.perf_counter() - start) / rounds / len(obj) * 1e6


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_commands", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20_000)
    a = p.parse_args()
    typed_cmd = Reserve("key/s0001", f"{CART}/s0001", (Item(123456789012345, 1, None),),
                        900_000, CART)
    dict_cmd = {"op": "reserve", "key": "key/s0001", "items": [["123456789012345", 1, None]],
                "ttl_ms": 900_000, "cart_id": CART, "reservation_id": f"{CART}/s0001"}
    typed_reply = Done(ReservationView(f"{CART}/s0001", "OPEN", 1_700_000_000_000, CART,
                                       ((123456789012345, "WH_01", 1),)))
    dict_reply = {"ok": True, "value": {
        "reservation_id": f"{CART}/s0001", "status": "OPEN", "expires_at_ms": 1_700_000_000_000,
        "cart_id": CART, "lines": [{"variant_id": "123456789012345", "warehouse_id": "WH_01",
                                    "quantity": 1}]}}
    print("| item | dataclass µs | dict µs | dataclass/dict |")
    print("|---|---:|---:|---:|")
    for name, typed, plain in (("command (reserve)", typed_cmd, dict_cmd),
                               ("reply (reservation)", typed_reply, dict_reply)):
        t = per_item_us([typed] * 8, a.rounds)
        d = per_item_us([plain] * 8, a.rounds)
        print(f"| {name} | {t:.2f} | {d:.2f} | {t / d:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
