"""Typed use of the console's and its operations' public API; mypy --strict checks it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from omnistack_core import create_app
from omnistack_core.ai import AIModule, UsageTotal, usage_totals
from omnistack_core.billing import BillingAccount, BillingModule, StoredEvent
from omnistack_core.console import ConsoleModule, ConsoleSettings, mask_value, mint_link
from omnistack_core.db import Database
from omnistack_core.email import DeliveryEvent, EmailSend, SendLog, Suppression, SuppressionList
from omnistack_core.jobs import (
    FailedJob,
    FailedJobs,
    JobsModule,
    RedisQueue,
    WorkerHeartbeat,
    live_workers,
)

app: FastAPI = create_app(
    modules=[JobsModule(), ConsoleModule(sections=["jobs"])], title="Operated"
)
settings = ConsoleSettings(console_role="ops")
enabled: bool = settings.console_on
link: str = mint_link("k" * 40, "alice", minutes=settings.console_link_minutes)
masked: object = mask_value({"email": "a@example.com"})


async def operate(app: FastAPI, failed: FailedJobs, database: Database) -> None:
    page: list[FailedJob] = await failed.page(limit=10, job="emails.send")
    if page:
        await failed.page(after=page[-1].cursor)
        await failed.discard(page[0].job_id)
    events: list[StoredEvent] = await BillingModule.webhooks(app).events(outcome="failed")
    if events:
        await BillingModule.webhooks(app).replay(events[0].id)
    account: BillingAccount | None = await BillingModule.of(app).account("user-1")
    if account is not None:
        await BillingModule.of(app).sync_user(account.user_id)
    suppressions = SuppressionList(database)
    listed: list[Suppression] = await suppressions.page(search="ada")
    delivered: list[DeliveryEvent] = await suppressions.delivery_events(limit=len(listed) + 1)
    sends: list[EmailSend] = await SendLog(database).page(status="failed", limit=10)
    if sends:
        await SendLog(database).page(after=(sends[-1].created_at, sends[-1].id))
    now = datetime.now(UTC)
    totals: list[UsageTotal] = await usage_totals(
        database, by="model", since=now - timedelta(days=1), until=now
    )
    quota = AIModule.of(app).quota
    if quota is not None and totals and delivered:
        await quota.reset(totals[0].key)


async def watch(queue: RedisQueue) -> float | None:
    workers: list[WorkerHeartbeat] = await live_workers(queue.pool, queue.settings.jobs_queue_name)
    return min((worker.age() for worker in workers), default=None)
