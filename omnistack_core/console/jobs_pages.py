"""Jobs: the queue, what runs, what failed; retry one, retry all matching, discard.

The actions are the jobs module's own (:class:`~omnistack_core.jobs.FailedJobs`), the same
``omnistack jobs retry|discard`` calls.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.applications import Starlette

from omnistack_core.console import audit
from omnistack_core.console.access import (
    PREFIX,
    Operator,
    current_operator,
    form_of,
    section_router,
)
from omnistack_core.console.pagination import decode_cursor, encode_cursor, page_url
from omnistack_core.console.state import ConsoleState
from omnistack_core.jobs import FailedJobs, JobsModule, RedisQueue, live_workers
from omnistack_core.jobs.serialization import loads

router = section_router("jobs")

_IN_PROGRESS = "arq:in-progress:"
_JOB = "arq:job:"


def _failed(queue: RedisQueue) -> FailedJobs:
    return FailedJobs(queue.pool, queue.settings.jobs_queue_name)


async def queue_overview(app: Starlette) -> dict[str, Any]:
    """Where jobs run, the queue's depth, jobs in progress, failures, the worker's heartbeat."""
    queue = JobsModule.of(app)
    summary: dict[str, Any] = {
        "depth": await queue.depth(),
        "in_progress": "",
        "failed": "",
        "heartbeat": None,
        "workers": None,
    }
    if not isinstance(queue, RedisQueue):
        summary["where"] = "in-process (no REDIS_URL): nothing is kept between restarts"
        summary["failed"] = len(getattr(queue, "failed", ()))
        return summary
    name = queue.settings.jobs_queue_name
    summary["where"] = f"arq workers on {name}"
    # Bounded: the queue holds the ids, and each costs one EXISTS in a pipeline.
    ids = await queue.pool.zrange(name, 0, 999)
    summary["in_progress"] = sum(await _running(queue, ids)) if ids else 0
    summary["failed"] = await _failed(queue).count()
    heartbeat = await queue.pool.get(f"{name}:health-check")
    summary["heartbeat"] = heartbeat.decode() if heartbeat else None
    summary["workers"] = await live_workers(queue.pool, name)
    summary["now"] = time.time()
    return summary


async def _running(queue: RedisQueue, ids: list[bytes]) -> list[bool]:
    async with queue.pool.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.exists(_IN_PROGRESS + job_id.decode())
        return [bool(found) for found in await pipe.execute()]


def _redis_queue(request: Request) -> RedisQueue | None:
    queue = JobsModule.of(request.app)
    return queue if isinstance(queue, RedisQueue) else None


@router.get("")
async def queued(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    status: str = "",
    after: str = "",
) -> Response:
    """Jobs waiting or running, soonest first; ``status=in-progress`` keeps the running ones."""
    state = ConsoleState.of(request.app)
    queue = _redis_queue(request)
    summary = await queue_overview(request.app)
    rows: list[dict[str, Any]] = []
    next_url = None
    if queue is not None:
        name = queue.settings.jobs_queue_name
        limit = state.settings.console_page_size
        cursor = decode_cursor(after, float, str)
        if cursor is None:
            found = await queue.pool.zrangebyscore(
                name, "-inf", "+inf", start=0, num=limit + 1, withscores=True
            )
        else:
            score, last = cursor
            ties = int(await queue.pool.zcount(name, score, score))
            found = [
                (member, member_score)
                for member, member_score in await queue.pool.zrangebyscore(
                    name, score, "+inf", start=0, num=limit + 1 + ties, withscores=True
                )
                if member_score > score or member.decode() > last
            ][: limit + 1]
        more = len(found) > limit
        found = found[:limit]
        ids = [member for member, _ in found]
        running = await _running(queue, ids) if ids else []
        definitions = (
            await queue.pool.mget([_JOB + job_id.decode() for job_id in ids]) if ids else []
        )
        for (member, score), is_running, raw in zip(found, running, definitions, strict=True):
            row = _queued_row(member.decode(), score, raw)
            row["status"] = "in progress" if is_running else "queued"
            if status != "in-progress" or is_running:
                rows.append(row)
        if more and found:
            last_member, last_score = found[-1]
            next_url = page_url(
                f"{PREFIX}/jobs",
                {"status": status},
                encode_cursor(last_score, last_member.decode()),
            )
    return state.render(
        request,
        "jobs.html",
        title="Jobs",
        operator=operator,
        summary=summary,
        redis=queue is not None,
        rows=rows,
        status=status,
        next_url=next_url,
        first_url=page_url(f"{PREFIX}/jobs", {"status": status}) if after else None,
    )


def _queued_row(job_id: str, score: float, raw: bytes | None) -> dict[str, Any]:
    from arq.jobs import DeserializationError, deserialize_job  # noqa: PLC0415

    row: dict[str, Any] = {"job_id": job_id, "due": score / 1000, "job": "", "args": "", "try": ""}
    if raw is None:
        return row
    try:
        definition = deserialize_job(raw, deserializer=loads)
    except DeserializationError:
        row["job"] = "(unreadable)"
        return row
    kwargs = {key: value for key, value in definition.kwargs.items() if not key.startswith("_")}
    row.update(
        job=definition.function,
        args=audit.mask_value({"args": list(definition.args), "kwargs": kwargs}),
        attempt=definition.job_try or 1,
    )
    return row


@router.get("/failed")
async def failed(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    *,
    job: str = "",
    after: str = "",
    done: str = "",
    count: int = 0,
) -> Response:
    """Jobs that failed for good, newest first, optionally of one job."""
    state = ConsoleState.of(request.app)
    queue = _redis_queue(request)
    entries: list[Any] = []
    next_url = None
    total = 0
    if queue is not None:
        store = _failed(queue)
        cursor = decode_cursor(after, float, str)
        limit = state.settings.console_page_size
        entries = await store.page(
            after=(cursor[0], cursor[1]) if cursor else None,
            limit=limit + 1,
            job=job or None,
        )
        total = await store.count(job or None)
        if len(entries) > limit:
            entries = entries[:limit]
            next_url = page_url(
                f"{PREFIX}/jobs/failed", {"job": job}, encode_cursor(*entries[-1].cursor)
            )
    notices = {
        "retried": f"Enqueued {count} failed job(s) again.",
        "discarded": "Discarded the failed job.",
        "missing": "That failed job is gone: someone retried or discarded it already.",
    }
    return state.render(
        request,
        "jobs_failed.html",
        title="Failed jobs",
        operator=operator,
        redis=queue is not None,
        inline_failures=[]
        if queue is not None
        else list(getattr(JobsModule.of(request.app), "failed", ())),
        entries=entries,
        masked=[audit.mask_value({"args": e.args, "kwargs": e.kwargs}) for e in entries],
        job=job,
        total=total,
        next_url=next_url,
        first_url=page_url(f"{PREFIX}/jobs/failed", {"job": job}) if after else None,
        notice=notices.get(done),
    )


@router.get("/failed/{job_id}")
async def failed_job(
    request: Request, job_id: str, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """One failed job: arguments (masked), error, where it failed, attempts."""
    state = ConsoleState.of(request.app)
    queue = _redis_queue(request)
    entry = await _failed(queue).get(job_id) if queue is not None else None
    if entry is None:
        return RedirectResponse(f"{PREFIX}/jobs/failed?done=missing", status_code=303)
    return state.render(
        request,
        "job_failed.html",
        title=f"Failed job {entry.job}",
        operator=operator,
        entry=entry,
        masked=audit.mask_value({"args": entry.args, "kwargs": entry.kwargs}),
    )


@router.post("/failed/{job_id}/retry")
async def retry(
    request: Request, job_id: str, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Enqueue one failed job again."""
    await form_of(request, operator)
    queue = _redis_queue(request)
    new_id = await _failed(queue).retry(job_id, queue.pool) if queue is not None else None
    audit.record(
        operator.name, "jobs.retry", job_id, f"enqueued as {new_id}" if new_id else "not found"
    )
    done = "retried&count=1" if new_id else "missing"
    return RedirectResponse(f"{PREFIX}/jobs/failed?done={done}", status_code=303)


@router.post("/failed/{job_id}/discard")
async def discard(
    request: Request, job_id: str, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Forget one failed job."""
    await form_of(request, operator)
    queue = _redis_queue(request)
    entry = await _failed(queue).discard(job_id) if queue is not None else None
    audit.record(operator.name, "jobs.discard", job_id, "discarded" if entry else "not found")
    return RedirectResponse(
        f"{PREFIX}/jobs/failed?done={'discarded' if entry else 'missing'}", status_code=303
    )


@router.post("/failed/retry-all")
async def retry_all(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Enqueue again every failed job matching the list's filter."""
    fields = await form_of(request, operator)
    job = fields.get("job", "")
    queue = _redis_queue(request)
    retried = (
        await _failed(queue).retry_all(queue.pool, job=job or None) if queue is not None else 0
    )
    audit.record(operator.name, "jobs.retry_all", job or "every job", f"{retried} enqueued")
    return RedirectResponse(f"{PREFIX}/jobs/failed?done=retried&count={retried}", status_code=303)
