"""Background jobs of a Gateway replica: a long internal operation (an index rebuild, a cache
prewarm) runs as its own task, recorded in PostgreSQL (adapters/postgres/jobs.py), so it
finishes whether or not the caller waits, hangs up or times out; any replica answers its
status (GET /api/v1/internal/jobs/{job_id}). The replica renews a running job's sign of life
every HEARTBEAT_S; one that dies mid-job stops renewing it, and ORPHAN_S later the record says
the job failed, and why (its work is idempotent: a rebuild builds a new generation, a prewarm
fills a cache, a prune goes on where it stopped; the operator starts another)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping

import ray
from fastapi import Response

from adapters.postgres.jobs import HEARTBEAT_S, JobRecord, JobStore
from domain.errors import AisleError, NotFound

log = logging.getLogger("aisle.jobs")
Result = Mapping[str, object]
Work = Callable[[], Awaitable[Result]]


class JobNotFound(NotFound):
    code = "job_not_found"


class JobFailed(AisleError):
    """A job another replica ran failed (its record's reason; a 500 that says why)."""

    code = "job_failed"


def failure(exc: BaseException) -> str:
    """Why a job failed, for its record: a domain error's code and message; another error's
    type and message, the one raised in an actor rather than Ray's wrapping of it (a
    traceback with terminal colours)."""
    if isinstance(exc, AisleError):
        return f"{exc.code}: {exc.message}"
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}"


class Jobs:
    def __init__(self, store: JobStore, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.store = store
        self.heartbeat_s = heartbeat_s
        self._tasks: dict[str, asyncio.Task[Result]] = {}  # this replica's, while they run

    async def start(self, kind: str, params: Mapping[str, object], work: Work) -> JobRecord:
        job = await self.store.start(kind, params)
        # in a context of its own: Serve cancels the Ray calls made in a request's context
        # when its caller hangs up, and this work must outlive the request
        task = asyncio.get_running_loop().create_task(self._run(job.job_id, work),
                                                      context=contextvars.Context())
        self._tasks[job.job_id] = task
        task.add_done_callback(lambda t: self._finished(job.job_id, t))
        return job

    def _finished(self, job_id: str, task: asyncio.Task[Result]) -> None:
        self._tasks.pop(job_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here: its record tells it; a waiter gets it raised

    async def _run(self, job_id: str, work: Work) -> Result:
        beat = asyncio.get_running_loop().create_task(self._alive(job_id))
        try:
            result = await work()
        except Exception as exc:  # recorded: the job's status says why it failed
            log.warning("job %s failed: %r", job_id, exc)
            await self.store.fail(job_id, failure(exc)[:2000])
            raise
        finally:
            beat.cancel()
        await self.store.succeed(job_id, result)
        return result

    async def _alive(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.store.alive(job_id)
            except Exception as exc:  # PostgreSQL down a while: the next beat may reach it
                log.warning("job %s: sign of life not recorded: %r", job_id, exc)

    async def answer(self, kind: str, params: Mapping[str, object], work: Work, wait: bool,
                     response: Response) -> dict[str, object]:
        """What a route that starts a job answers: the job's record (its declared 202), or
        with `wait` its result once done (200)."""
        job = await self.start(kind, params, work)
        if not wait:
            return job.to_json()
        response.status_code = 200
        return dict(await self.result(job))

    async def get(self, job_id: str) -> JobRecord:
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id} not found")
        return job

    async def result(self, job: JobRecord) -> Result:
        """The result of a job this replica started, once it is done: its error raised as
        it was (a caller that stops waiting does not stop the job)."""
        return await asyncio.shield(self._tasks[job.job_id]) if job.job_id in self._tasks \
            else await self._polled(job.job_id)

    async def _polled(self, job_id: str, poll_s: float = 0.5) -> Result:
        while (job := await self.get(job_id)).status == "running":  # noqa: ASYNC110  # another replica runs it: its record is all there is
            await asyncio.sleep(poll_s)
        if job.status == "failed":
            raise JobFailed(f"job {job_id} failed: {job.error}")
        return job.result or {}
