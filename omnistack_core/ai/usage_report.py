"""Usage and estimated cost over a window, totalled by user or by model, a page at a time.

The window is a range on ``ai_usage.created_at`` (indexed); the groups come in key order
(user id, or provider then model), and the next page starts after the last key, so an
operator pages through thousands of users without an offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, tuple_

from omnistack_core.ai.usage import ai_usage
from omnistack_core.db import Database

GroupBy = Literal["user", "model"]


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """One user's or one model's usage over a window.

    Attributes:
        key: The user id (``""`` for calls made for no user), or ``provider:model``.
        calls: Calls made.
        input_tokens: Input tokens, cached ones included.
        output_tokens: Output tokens.
        cached_tokens: Input tokens read from the provider's cache.
        cost: Estimated US dollars of the priced calls.
        unpriced_calls: Calls of models the price table does not know.
        cursor: What :func:`usage_totals` takes as ``after`` for the next page.
    """

    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: float
    unpriced_calls: int
    cursor: tuple[str, ...]


async def usage_totals(
    database: Database,
    *,
    by: GroupBy,
    since: datetime,
    until: datetime,
    after: tuple[str, ...] | None = None,
    limit: int = 50,
) -> list[UsageTotal]:
    """Totals of the calls made in ``[since, until)``, by user or by model, in key order.

    Args:
        database: The service's database.
        by: ``user`` or ``model``.
        since: The window's start.
        until: The window's end (excluded).
        after: The :attr:`UsageTotal.cursor` of the previous page's last total.
        limit: At most this many.
    """
    table = ai_usage
    keys = (
        [func.coalesce(table.c.user_id, "")] if by == "user" else [table.c.provider, table.c.model]
    )
    query = (
        select(
            *keys,
            func.count().label("calls"),
            func.coalesce(func.sum(table.c.input_tokens), 0).label("input_tokens"),
            func.coalesce(func.sum(table.c.output_tokens), 0).label("output_tokens"),
            func.coalesce(func.sum(table.c.cached_tokens), 0).label("cached_tokens"),
            func.coalesce(func.sum(table.c.cost), 0.0).label("cost"),
            func.count().filter(table.c.cost.is_(None)).label("unpriced_calls"),
        )
        .where(table.c.created_at >= since, table.c.created_at < until)
        .group_by(*keys)
        .order_by(*keys)
        .limit(limit)
    )
    if after is not None:
        query = query.having(tuple_(*keys) > tuple_(*after))
    async with database.session() as session:
        rows = (await session.execute(query)).all()
    totals = []
    for row in rows:
        cursor = tuple(str(part) for part in row[: len(keys)])
        totals.append(
            UsageTotal(
                key=":".join(cursor),
                calls=int(row.calls),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                cached_tokens=int(row.cached_tokens),
                cost=float(row.cost),
                unpriced_calls=int(row.unpriced_calls),
                cursor=cursor,
            )
        )
    return totals
