"""Email: the suppression list (search, remove after a confirmation), sends, delivery events.

The actions are the email module's own :class:`~omnistack_core.email.SuppressionList`.
Suppressed addresses are shown in full, since finding and removing one is the point of the
page; the audit log masks them.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

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
from omnistack_core.db import Database
from omnistack_core.email import EmailModule, SendLog, SuppressionList
from omnistack_core.installation import Installation

router = section_router("email")

# The delivery event types of Resend, from least to most final, to name a send's status.
_STATUS_ORDER = (
    "email.sent",
    "email.delivery_delayed",
    "email.delivered",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.complained",
)


def _suppressions(request: Request) -> SuppressionList:
    found = EmailModule.of(request.app).suppressions
    return found if found is not None else SuppressionList(_database(request))


def _database(request: Request) -> Database:
    """The modules' database (a sender built without a suppression list still has one)."""
    return Installation.of(request.app).require_database()


@router.get("")
async def suppressions(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    *,
    search: str = "",
    after: str = "",
    done: str = "",
    address: str = "",
) -> Response:
    """Suppressed addresses in address order, optionally those starting with ``search``."""
    state = ConsoleState.of(request.app)
    limit = state.settings.console_page_size
    cursor = decode_cursor(after, str)
    rows = await _suppressions(request).page(
        after=cursor[0] if cursor else None, limit=limit + 1, search=search
    )
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_url = page_url(f"{PREFIX}/email", {"search": search}, encode_cursor(rows[-1].address))
    notices = {
        "removed": f"{address} is no longer suppressed: email to it is sent again.",
        "missing": f"{address} was not suppressed.",
    }
    return state.render(
        request,
        "email.html",
        title="Email",
        operator=operator,
        rows=rows,
        search=search,
        next_url=next_url,
        first_url=page_url(f"{PREFIX}/email", {"search": search}) if after else None,
        notice=notices.get(done),
    )


@router.get("/suppressions/remove")
async def confirm_removal(
    request: Request, address: str, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Ask before removing a suppression: this page works without JavaScript."""
    state = ConsoleState.of(request.app)
    return state.render(
        request,
        "email_remove.html",
        title="Remove a suppression",
        operator=operator,
        address=address,
    )


@router.post("/suppressions/remove")
async def remove(
    request: Request, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """Remove a suppression: email to the address is sent again."""
    fields = await form_of(request, operator)
    address = fields.get("address", "")
    removed = await _suppressions(request).remove(address)
    audit.record(
        operator.name, "email.unsuppress", address, "removed" if removed else "not suppressed"
    )
    done = "removed" if removed else "missing"
    return RedirectResponse(f"{PREFIX}/email?done={done}&address={quote(address)}", status_code=303)


@router.get("/events")
async def delivery_events(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    after: str = "",
) -> Response:
    """Delivery events newest first, and the sends they tell of with their latest status."""
    state = ConsoleState.of(request.app)
    limit = state.settings.console_page_size
    cursor = decode_cursor(after, moment, str)
    rows = await _suppressions(request).delivery_events(
        after=(cursor[0], cursor[1]) if cursor else None,
        limit=limit + 1,
    )
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        received, last_id = rows[-1].received_at, rows[-1].id
        next_url = page_url(
            f"{PREFIX}/email/events", {}, encode_cursor(received.isoformat(), last_id)
        )
    sends: dict[str, dict[str, Any]] = {}
    for event in rows:
        if event.email_id is None:
            continue
        send = sends.setdefault(event.email_id, {"status": event.type, "at": event.received_at})
        if _rank(event.type) > _rank(send["status"]):
            send["status"] = event.type
    return state.render(
        request,
        "email_events.html",
        title="Email delivery",
        operator=operator,
        rows=rows,
        sends=sends,
        next_url=next_url,
        first_url=f"{PREFIX}/email/events" if after else None,
    )


# The statuses a send can have, for the filter: the sender's, then delivery events'.
SEND_STATUSES = (
    "sent",
    "skipped",
    "failed",
    "delayed",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "suppressed",
)


@router.get("/sends")
async def sends(
    request: Request,
    operator: Annotated[Operator, Depends(current_operator)],
    *,
    status: str = "",
    after: str = "",
) -> Response:
    """Recent sends, newest first, each with its status; filtered by status."""
    state = ConsoleState.of(request.app)
    limit = state.settings.console_page_size
    status = status if status in SEND_STATUSES else ""
    cursor = decode_cursor(after, moment, str)
    rows = await SendLog(_database(request)).page(
        after=(cursor[0], cursor[1]) if cursor else None,
        limit=limit + 1,
        status=status or None,
    )
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_url = page_url(
            f"{PREFIX}/email/sends",
            {"status": status},
            encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id),
        )
    return state.render(
        request,
        "email_sends.html",
        title="Email sends",
        operator=operator,
        rows=rows,
        status=status,
        statuses=SEND_STATUSES,
        next_url=next_url,
        first_url=page_url(f"{PREFIX}/email/sends", {"status": status}) if after else None,
    )


def _rank(event_type: str) -> int:
    return _STATUS_ORDER.index(event_type) if event_type in _STATUS_ORDER else -1
