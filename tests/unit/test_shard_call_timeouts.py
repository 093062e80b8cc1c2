"""A shard actor's first answer may take longer than a call's timeout (its worker process
starts and opens the shard: seconds on a busy machine); later calls get CALL_TIMEOUT_S."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import actors.index_shard_client as isc
from actors.index_shard_client import IndexShardClient, ShardUnavailable


async def test_an_actors_first_answer_may_take_longer_than_a_call(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(isc, "CALL_TIMEOUT_S", 0.05)
    monkeypatch.setattr(isc, "START_TIMEOUT_S", 5.0)
    client = IndexShardClient("db")
    actor = object()
    monkeypatch.setattr(client, "_actor", lambda generation, k, shard_dir: actor)

    async def slow(_: object) -> str:
        await asyncio.sleep(0.3)
        return "opened"

    assert await client._on("g1", 0, tmp_path, slow) == "opened"  # a new actor: started
    client._actors[("g1", 0)] = actor  # what _actor keeps
    with pytest.raises(ShardUnavailable):  # it answered once: now a call's timeout
        await client._on("g1", 0, tmp_path, slow)
    client._forget("g1", 0, actor, tmp_path)  # replaced (it died): the new one may start
    assert client._timeout("g1", 0) == isc.START_TIMEOUT_S
