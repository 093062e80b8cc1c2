"""Stable buckets for ids: the same id lands in the same bucket in every process and on every
start (Python's hash() is salted per process)."""

from __future__ import annotations


def bucket_of(key: int, buckets: int) -> int:
    """`key` -> 0..buckets-1 through the splitmix64 finalizer (Snowflake ids' low bits are
    skewed: a plain modulo would load some buckets more). Inventory partitions and search
    index shards both place ids with it."""
    z = (key + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) % buckets
