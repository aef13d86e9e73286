"""One heartbeat per worker process in Redis, and :func:`live_workers` to list them.

arq's own health key (``<queue>:health-check``) is one key per queue: every worker on the
queue overwrites it, so it says that *some* worker is alive, not which, nor how many. Each
worker here also keeps a key of its own, ``omnistack:workers:<queue>:<worker id>``, holding a
small JSON document (host, pid, queue, start, last beat, jobs done, failed, retried, running),
rewritten every ``JOBS_HEALTH_CHECK_SECONDS`` with a time to live of three intervals, and
deleted when the worker stops cleanly. A killed worker's key expires on its own.

A sorted set per queue (``omnistack:workers:<queue>``, scored by last beat) indexes the keys,
so listing the workers reads a handful of keys instead of scanning Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("omnistack.jobs")

_PREFIX = "omnistack:workers:"
# Three intervals: one late beat (a busy event loop, a slow Redis) does not hide a worker.
_TTL_INTERVALS = 3


def _index_key(queue: str) -> str:
    return f"{_PREFIX}{queue}"


def _worker_key(queue: str, worker_id: str) -> str:
    return f"{_PREFIX}{queue}:{worker_id}"


@dataclass(frozen=True)
class WorkerHeartbeat:
    """What one live worker process last said about itself."""

    worker_id: str
    """``<host>-<pid>-<random>``: unique even when a container restarts with the same pid."""
    host: str
    pid: int
    queue: str
    started_at: float
    """Unix time the worker started."""
    last_seen: float
    """Unix time of its latest beat."""
    jobs_done: int
    """Jobs that succeeded since it started."""
    jobs_failed: int
    """Jobs that failed for good (recorded among the failed jobs) since it started."""
    jobs_retried: int
    """Attempts that failed and were scheduled again since it started."""
    jobs_in_progress: int
    """Jobs running at its latest beat."""

    def age(self, now: float | None = None) -> float:
        """Seconds since the latest beat."""
        return max(0.0, (time.time() if now is None else now) - self.last_seen)


async def live_workers(redis: Redis, queue: str) -> list[WorkerHeartbeat]:
    """The workers on ``queue`` whose heartbeat has not expired, most recently started first.

    Args:
        redis: A client of the queue's Redis (arq's pool is one).
        queue: The queue's name (``JOBS_QUEUE_NAME``).

    Returns:
        One entry per live worker process; empty when none runs.
    """
    index = _index_key(queue)
    ids = [
        raw.decode() if isinstance(raw, bytes) else str(raw)
        for raw in await redis.zrange(index, 0, -1)
    ]
    if not ids:
        return []
    documents = await redis.mget([_worker_key(queue, worker_id) for worker_id in ids])
    workers: list[WorkerHeartbeat] = []
    gone: list[str] = []
    for worker_id, document in zip(ids, documents, strict=True):
        if document is None:
            gone.append(worker_id)  # expired: the worker was killed without a goodbye
            continue
        workers.append(WorkerHeartbeat(**json.loads(document)))
    if gone:
        await redis.zrem(index, *gone)
    workers.sort(key=lambda worker: (-worker.started_at, worker.worker_id))
    return workers


@dataclass
class WorkerBeat:
    """The running worker's own heartbeat: counts its jobs and writes them to Redis."""

    queue: str
    interval: float
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    )
    started_at: float = field(default_factory=time.time)
    jobs_done: int = 0
    jobs_failed: int = 0
    jobs_retried: int = 0
    jobs_in_progress: int = 0

    def snapshot(self) -> WorkerHeartbeat:
        """The heartbeat as of now."""
        return WorkerHeartbeat(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queue=self.queue,
            started_at=self.started_at,
            last_seen=time.time(),
            jobs_done=self.jobs_done,
            jobs_failed=self.jobs_failed,
            jobs_retried=self.jobs_retried,
            jobs_in_progress=self.jobs_in_progress,
        )

    async def beat(self, redis: Redis) -> None:
        """Write the heartbeat once."""
        heartbeat = self.snapshot()
        ttl_ms = max(1000, int(self.interval * _TTL_INTERVALS * 1000))
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(
                _worker_key(self.queue, self.worker_id), json.dumps(asdict(heartbeat)), px=ttl_ms
            )
            pipe.zadd(_index_key(self.queue), {self.worker_id: heartbeat.last_seen})
            await pipe.execute()

    async def run(self, redis: Redis) -> None:
        """Beat every interval until cancelled; a failed beat is logged and the next tries."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat(redis)
            except Exception as exc:  # noqa: BLE001 - Redis may be back by the next beat
                logger.warning("Worker heartbeat failed: %s: %s", type(exc).__name__, exc)

    async def remove(self, redis: Redis) -> None:
        """Forget this worker: it stops cleanly."""
        with contextlib.suppress(Exception):  # a dead Redis forgets the key by its TTL
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(_worker_key(self.queue, self.worker_id))
                pipe.zrem(_index_key(self.queue), self.worker_id)
                await pipe.execute()


def worker_beat_of(ctx: dict[str, Any]) -> WorkerBeat | None:
    """The heartbeat the worker's startup put in arq's context, if any."""
    beat = ctx.get("heartbeat")
    return beat if isinstance(beat, WorkerBeat) else None
