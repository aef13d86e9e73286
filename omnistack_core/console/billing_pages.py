"""Billing: Stripe's webhook events (filter, read, replay the failed) and a user's account.

The actions are the billing module's own:
:meth:`~omnistack_core.billing.WebhookIngest.replay` and
:meth:`~omnistack_core.billing.WebhookIngest.replay_failed` (what ``omnistack billing
replay`` runs), :meth:`~omnistack_core.billing.StripeBilling.sync_user` (``billing sync``
for one user).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from omnistack_core.billing import BillingModule
from omnistack_core.console import audit
from omnistack_core.console.access import (
    PREFIX,
    Operator,
    current_operator,
    form_of,
    section_router,
)
from omnistack_core.console.pagination import decode_cursor, encode_cursor, moment, page_url
from omnistack_core.console.state import ConsoleState

router = section_router("billing")

_NOTICES = {
    "replayed": "The event was processed.",
    "duplicate": "The event had been processed already.",
    "failed": "The event failed again: its error is below.",
    "missing": "No such event.",
}


def _day(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


@router.get("")
async def events(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    *,
    type: str = "",  # noqa: A002 - the filter's name in the URL
    outcome: str = "",
    since: str = "",
    until: str = "",
    after: str = "",
    done: str = "",
    count: str = "",
) -> Response:
    """Webhook events, newest first, filtered by type, outcome and day received."""
    state = ConsoleState.of(request.app)
    webhooks = BillingModule.webhooks(request.app)
    limit = state.settings.console_page_size
    cursor = decode_cursor(after, moment, str)
    start, end = _day(since), _day(until)
    rows = await webhooks.events(
        after=(cursor[0], cursor[1]) if cursor else None,
        limit=limit + 1,
        event_type=type or None,
        outcome=outcome if outcome in ("processed", "failed") else None,  # type: ignore[arg-type]
        since=start,
        until=end + timedelta(days=1) if end else None,
    )
    filters = {"type": type, "outcome": outcome, "since": since, "until": until}
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        received, last_id = rows[-1].cursor
        next_url = page_url(
            f"{PREFIX}/billing", filters, encode_cursor(received.isoformat(), last_id)
        )
    notice = _NOTICES.get(done)
    if done == "replayed-all":
        notice = f"Replayed failed events: {count}."
    return state.render(
        request,
        "billing.html",
        title="Billing",
        operator=operator,
        rows=rows,
        filters=filters,
        next_url=next_url,
        first_url=page_url(f"{PREFIX}/billing", filters) if after else None,
        notice=notice,
    )


@router.get("/events/{event_id}")
async def event(
    request: Request,
    event_id: str,
    operator: Annotated[Operator, Depends(current_operator)],
    done: str = "",
) -> Response:
    """One event: its outcome, attempts, error, and its payload (personal data masked)."""
    state = ConsoleState.of(request.app)
    stored = await BillingModule.webhooks(request.app).event(event_id)
    if stored is None:
        return RedirectResponse(f"{PREFIX}/billing?done=missing", status_code=303)
    return state.render(
        request,
        "billing_event.html",
        title=f"Event {stored.id}",
        operator=operator,
        event=stored,
        payload=audit.mask_value(stored.payload or {}),
        notice=_NOTICES.get(done),
    )


@router.post("/events/{event_id}/replay")
async def replay(
    request: Request, event_id: str, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Run one stored event again through the webhook's path."""
    await form_of(request, operator)
    try:
        outcome = await BillingModule.webhooks(request.app).replay(event_id)
    except Exception as exc:  # noqa: BLE001 - recorded on the event by ingest; shown there
        audit.record(operator.name, "billing.replay", event_id, f"failed: {type(exc).__name__}")
        done = "failed"
    else:
        audit.record(operator.name, "billing.replay", event_id, outcome or "not found")
        done = {"processed": "replayed", "duplicate": "duplicate"}.get(outcome or "", "missing")
    return RedirectResponse(
        f"{PREFIX}/billing/events/{quote(event_id, safe='')}?done={done}", status_code=303
    )


@router.post("/replay-failed")
async def replay_failed(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Replay the failed events, oldest first, as ``omnistack billing replay`` does."""
    await form_of(request, operator)
    processed, failed = await BillingModule.webhooks(request.app).replay_failed(limit=100)
    outcome = f"{processed} processed, {failed} failed again"
    audit.record(operator.name, "billing.replay_failed", "failed events", outcome)
    return RedirectResponse(
        f"{PREFIX}/billing?outcome=failed&done=replayed-all&count={quote(outcome)}",
        status_code=303,
    )


@router.get("/users")
async def user(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    user_id: str = "",
    done: str = "",
    corrected: int = 0,
) -> Response:
    """Look up a user: their Stripe customer, subscriptions and entitlements."""
    state = ConsoleState.of(request.app)
    account: Any = None
    if user_id:
        account = await BillingModule.of(request.app).account(user_id)
    notice = (
        f"Synced from Stripe: {corrected} subscription(s) corrected." if done == "synced" else None
    )
    return state.render(
        request,
        "billing_user.html",
        title="Billing: a user",
        operator=operator,
        user_id=user_id,
        account=account,
        notice=notice,
    )


@router.post("/users/sync")
async def sync_user(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Fetch the user's subscriptions from Stripe and correct what is stored."""
    fields = await form_of(request, operator)
    user_id = fields.get("user_id", "")
    report = await BillingModule.of(request.app).sync_user(user_id)
    audit.record(operator.name, "billing.sync_user", user_id, f"{report.corrected} corrected")
    return RedirectResponse(
        f"{PREFIX}/billing/users?user_id={quote(user_id)}&done=synced&corrected={report.corrected}",
        status_code=303,
    )
