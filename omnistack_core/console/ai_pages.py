"""AI: usage and estimated cost by user or by model over a window; a user's quota, and a reset.

Reads the AI module's ``ai_usage`` table (written with ``AI_RECORD_USAGE``) through
:func:`~omnistack_core.ai.usage_totals`, and acts through its
:class:`~omnistack_core.ai.Quota` (``reset``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from omnistack_core.ai import AIModule, usage_totals
from omnistack_core.ai.usage_report import GroupBy
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
from omnistack_core.installation import Installation

router = section_router("ai")

WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("")
async def usage(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    *,
    by: str = "user",
    window: str = "24h",
    since: str = "",
    until: str = "",
    after: str = "",
) -> Response:
    """Usage and cost over the window, one row per user or per model, in key order."""
    state = ConsoleState.of(request.app)
    group: GroupBy = "model" if by == "model" else "user"
    end = _moment(until) or datetime.now(UTC)
    start = _moment(since) or end - WINDOWS.get(window, WINDOWS["24h"])
    recording = bool(getattr(Installation.of(request.app).settings, "ai_record_usage", False))
    limit = state.settings.console_page_size
    cursor = decode_cursor(after, *([str] if group == "user" else [str, str]))
    rows = await usage_totals(
        Installation.of(request.app).require_database(),
        by=group,
        since=start,
        until=end,
        after=cursor,
        limit=limit + 1,
    )
    # Later pages keep the window the first one computed, so "now" moving does not shift them.
    filters = {"by": group, "since": start.isoformat(), "until": end.isoformat()}
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_url = page_url(f"{PREFIX}/ai", filters, encode_cursor(*rows[-1].cursor))
    return state.render(
        request,
        "ai.html",
        title="AI usage",
        operator=operator,
        rows=rows,
        group=group,
        window=window if not since else "",
        start=start,
        end=end,
        recording=recording,
        total_cost=sum(row.cost for row in rows),
        next_url=next_url,
        first_url=page_url(f"{PREFIX}/ai", filters) if after else None,
    )


@router.get("/quota")
async def quota(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    *,
    user_id: str = "",
    done: str = "",
    tokens: int = 0,
    calls: int = 0,
) -> Response:
    """A user's budget in the current window: used, limit, when it starts afresh."""
    state = ConsoleState.of(request.app)
    budget = AIModule.of(request.app).quota
    spent: Any = None
    if budget is not None and user_id:
        spent = await budget.spent(user_id)
    notice = (
        f"Quota reset: {tokens} tokens and {calls} calls given back." if done == "reset" else None
    )
    return state.render(
        request,
        "ai_quota.html",
        title="AI quota",
        operator=operator,
        user_id=user_id,
        budget=budget,
        spent=spent,
        notice=notice,
    )


@router.post("/quota/reset")
async def reset(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Give a user their whole budget back for the current window."""
    fields = await form_of(request, operator)
    user_id = fields.get("user_id", "")
    budget = AIModule.of(request.app).quota
    if budget is None or not user_id:
        audit.record(operator.name, "ai.quota_reset", user_id, "no quota")
        return RedirectResponse(f"{PREFIX}/ai/quota", status_code=303)
    tokens, calls = await budget.reset(user_id)
    audit.record(operator.name, "ai.quota_reset", user_id, f"{tokens} tokens, {calls} calls")
    return RedirectResponse(
        f"{PREFIX}/ai/quota?user_id={quote(user_id)}&done=reset&tokens={tokens}&calls={calls}",
        status_code=303,
    )
