"""Usage of every call: Prometheus metrics, a log line, the ``ai_usage`` table, app hooks.

The metrics and the log line are always written. The table is written when the app opts in
(``AI_RECORD_USAGE``), one row per call keyed by user, so usage can be billed. Hooks
(``AIModule(on_usage=[...])``) receive each :class:`UsageRecord`: that is how usage reaches
Stripe's meters without this module importing billing (the record's ``id`` is the meter
event's identifier, so a retried report is counted once).
"""

from __future__ import annotations

import importlib.util
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Float, Integer, String, Table

from omnistack_core.ai.types import Usage
from omnistack_core.db import Database, new_metadata
from omnistack_core.request_context import current_request_id

logger = logging.getLogger("omnistack.ai")

ai_metadata = new_metadata()
"""The AI module's table, for migrations."""

ai_usage = Table(
    "ai_usage",
    ai_metadata,
    Column("id", String(36), primary_key=True, doc="The usage record's id (a UUID)."),
    Column("user_id", String(255), nullable=True, index=True),
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False, doc="The model requested."),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=True, doc="Estimated US dollars; null when unpriced."),
    Column("request_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One call's usage.

    Attributes:
        provider: Who answered.
        model: The model requested (without the provider prefix).
        usage: Tokens.
        cost: Estimated US dollars, or None for a model the price table does not know.
        user_id: Whose call it was, when the request said.
        latency_ms: Milliseconds the call took.
        streamed: Whether it was a streaming call.
        id: Unique per call: an idempotency key for whatever the usage is reported to.
        request_id: The HTTP request's id, when the call was made serving one.
        created_at: When the call finished.
    """

    provider: str
    model: str
    usage: Usage
    cost: float | None
    user_id: str | None = None
    latency_ms: float = 0.0
    streamed: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    request_id: str | None = field(default_factory=current_request_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


UsageHook = Callable[[UsageRecord], Awaitable[None]]
"""``async def on_usage(record)``: called after every successful call; an exception is
logged and does not fail the call."""


def _metrics() -> tuple[Any, Any] | None:
    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from prometheus_client import Counter  # noqa: PLC0415 - optional extra

    from omnistack_core.observability.metrics import REGISTRY  # noqa: PLC0415 - same extra

    requests = Counter(
        "ai_requests_total",
        "AI provider calls, by provider, model and outcome (success, error, rate_limited, "
        "timeout).",
        ["provider", "model", "status"],
        registry=REGISTRY,
    )
    tokens = Counter(
        "ai_tokens_total",
        "Tokens used, by provider, model and kind (input, output, cached).",
        ["provider", "model", "kind"],
        registry=REGISTRY,
    )
    return requests, tokens


_METRICS = _metrics()


def count_failure(provider: str, model: str, status: str) -> None:
    """Count a failed attempt (``error``, ``rate_limited`` or ``timeout``)."""
    if _METRICS is not None:
        _METRICS[0].labels(provider, model, status).inc()


class UsageRecorder:
    """Writes each call's usage everywhere it goes.

    Args:
        database: Where the ``ai_usage`` rows go; None to write none.
        hooks: The app's usage hooks.
    """

    def __init__(self, database: Database | None, hooks: Sequence[UsageHook] = ()) -> None:
        self.database = database
        self.hooks = list(hooks)

    async def record(self, record: UsageRecord) -> None:
        """Record one successful call; never raises."""
        usage = record.usage
        if _METRICS is not None:
            requests, tokens = _METRICS
            requests.labels(record.provider, record.model, "success").inc()
            for kind, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached", usage.cached_tokens),
            ):
                if count:
                    tokens.labels(record.provider, record.model, kind).inc(count)
        logger.info(
            "AI call to %s:%s: %d in, %d out",
            record.provider,
            record.model,
            usage.input_tokens,
            usage.output_tokens,
            extra={
                "ai_provider": record.provider,
                "ai_model": record.model,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cached_tokens": usage.cached_tokens,
                "cost_usd": record.cost,
                "latency_ms": round(record.latency_ms, 1),
                "streamed": record.streamed,
                "user_id": record.user_id,
            },
        )
        if self.database is not None:
            await _insert(self.database, record)
        for hook in self.hooks:
            try:
                await hook(record)
            except Exception:
                logger.exception("An AI usage hook failed for %s", record.id)


async def _insert(database: Database, record: UsageRecord) -> None:
    try:
        async with database.session() as session:
            await session.execute(
                ai_usage.insert().values(
                    id=record.id,
                    user_id=record.user_id,
                    provider=record.provider,
                    model=record.model,
                    input_tokens=record.usage.input_tokens,
                    output_tokens=record.usage.output_tokens,
                    cached_tokens=record.usage.cached_tokens,
                    cost=record.cost,
                    request_id=record.request_id,
                    created_at=record.created_at,
                )
            )
    except Exception:
        # The answer was given and paid for: losing its row must not fail the caller.
        logger.exception("Could not write the AI usage of %s", record.id)
