"""Addresses not to send to again, and the webhook events already handled.

Two tables, in :data:`email_metadata`:

* ``email_suppressions``: one row per address that hard-bounced, complained or was
  suppressed by the provider (or by hand). Sends to these addresses are skipped.
* ``email_webhook_events``: one row per provider webhook handled (its id, type and email),
  so a webhook delivered twice is handled once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Column, DateTime, Index, String, Table, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.db import Database, new_metadata
from omnistack_core.db.upsert import insert_ignoring_duplicate
from omnistack_core.email.message import parse_address

logger = logging.getLogger("omnistack.email")

SuppressionReason = Literal["bounced", "complained", "suppressed", "manual"]

_ADDRESS_CHARS = 320

email_metadata = new_metadata()
"""The email module's tables, for migrations."""

email_suppressions = Table(
    "email_suppressions",
    email_metadata,
    Column("address", String(_ADDRESS_CHARS), primary_key=True, doc="The address, in lower case."),
    Column("reason", String(32), nullable=False, doc="bounced, complained, suppressed, manual"),
    Column("detail", String(500), nullable=True, doc="The provider's reason, when it gave one."),
    Column("event_id", String(255), nullable=True, doc="The webhook that suppressed it."),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

email_webhook_events = Table(
    "email_webhook_events",
    email_metadata,
    Column("id", String(255), primary_key=True, doc="The webhook's id (svix-id)."),
    Column("type", String(100), nullable=False, doc="The provider's event type."),
    Column("email_id", String(255), nullable=True, doc="The provider's id of the email."),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # The console pages through delivery events newest first.
    Index("ix_email_webhook_events_received", "received_at", "id"),
)


def masked_address(value: object) -> str:
    """``value`` for a log line without the address in it: ``a***@example.com``.

    Something that is not an address says only what it is (``a str of 412 characters``,
    ``an int``), never its content.
    """
    if isinstance(value, str):
        local, at, domain = value.rpartition("<")[2].rstrip(">").strip().rpartition("@")
        if at and local and domain and len(domain) <= 255:
            return f"{local[0]}***@{domain}"
        return f"a str of {len(value)} characters"
    return "None" if value is None else f"a {type(value).__name__}"


def suppressible_address(value: object) -> str | None:
    """The bare lower-case address ``value`` names, or None when it names none.

    A provider's event can carry anything where an address should be (an empty string, a
    number, ``null``, 400 characters): none of it names a mailbox, and none of it may be
    stored as one.
    """
    if not isinstance(value, str):
        return None
    try:
        address = parse_address(value).email.lower()
    except ValueError:
        return None
    # email_validator refuses control characters (NUL) and holds addresses to 254
    # characters; the column's own bound is checked too, whatever the validator's version.
    return address if len(address) <= _ADDRESS_CHARS else None


@dataclass(frozen=True, slots=True)
class Suppression:
    """A suppressed address and why.

    Attributes:
        address: The bare address, in lower case.
        reason: bounced, complained, suppressed or manual.
        detail: The provider's reason, when it gave one.
        event_id: The webhook that suppressed it.
        created_at: When.
    """

    address: str
    reason: str
    detail: str | None
    event_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """A delivery event the webhook handled: ``email.delivered`` of one email, say.

    Attributes:
        id: The webhook's id.
        type: The provider's event type.
        email_id: The provider's id of the email.
        received_at: When it arrived.
    """

    id: str
    type: str
    email_id: str | None
    received_at: datetime


def mailbox(address: str) -> str:
    """The bare address of ``address``, in lower case: ``Ada <Ada@X.com>`` → ``ada@x.com``.

    Suppression compares addresses case-insensitively: mailbox providers treat the local
    part that way in practice, and a bounce must suppress every spelling.
    """
    try:
        return parse_address(address).email.lower()
    except ValueError:
        return address.strip().lower()


class SuppressionList:
    """Reads and writes ``email_suppressions``.

    Args:
        database: The app's database.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def find(self, addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are suppressed, as bare lower-case addresses."""
        wanted = {mailbox(address) for address in addresses}
        if not wanted:
            return set()
        async with self.database.session() as session:
            rows = await session.scalars(
                select(email_suppressions.c.address).where(
                    email_suppressions.c.address.in_(sorted(wanted))
                )
            )
            return set(rows)

    async def add(
        self,
        address: str,
        reason: SuppressionReason = "manual",
        *,
        detail: str | None = None,
        event_id: str | None = None,
        session: AsyncSession | None = None,
    ) -> bool:
        """Suppress ``address``; the first reason recorded is kept.

        Args:
            address: The address, with or without a display name.
            reason: Why.
            detail: The provider's explanation.
            event_id: The webhook that reported it.
            session: Write in this session's transaction instead of a new one.

        Returns:
            Whether the address was not suppressed before.

        Raises:
            ValueError: ``address`` is not an email address.
        """
        bare = suppressible_address(address)
        if bare is None:
            raise ValueError(f"not an email address: {masked_address(address)}")
        # PostgreSQL's text types refuse NUL; a provider's message may hold one.
        detail = (detail or "").replace("\x00", "")[:500]
        values = {
            "address": bare,
            "reason": reason,
            "detail": detail or None,
            "event_id": event_id,
            "created_at": datetime.now(UTC),
        }
        if session is not None:
            added = await insert_ignoring_duplicate(session, email_suppressions, values)
        else:
            async with self.database.session() as own:
                added = await insert_ignoring_duplicate(own, email_suppressions, values)
        if added:
            logger.info("Suppressed %s: %s", masked_address(bare), reason)
        return added

    async def page(
        self, *, after: str | None = None, limit: int = 50, search: str = ""
    ) -> list[Suppression]:
        """A page of suppressed addresses in address order (the primary key's).

        Args:
            after: The last address of the previous page.
            limit: At most this many.
            search: Only addresses that start with it (case-insensitive).
        """
        table = email_suppressions
        query = select(table).order_by(table.c.address).limit(limit)
        if after is not None:
            query = query.where(table.c.address > after)
        if search:
            query = query.where(table.c.address.startswith(search.strip().lower(), autoescape=True))
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [Suppression(**row._asdict()) for row in rows]

    async def delivery_events(
        self, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> list[DeliveryEvent]:
        """A page of the delivery events the webhook handled, newest received first.

        Args:
            after: The last event's ``(received_at, id)`` of the previous page.
            limit: At most this many.
        """
        table = email_webhook_events
        query = select(table).order_by(table.c.received_at.desc(), table.c.id.desc()).limit(limit)
        if after is not None:
            received, last_id = after
            query = query.where(
                or_(
                    table.c.received_at < received,
                    and_(table.c.received_at == received, table.c.id < last_id),
                )
            )
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [DeliveryEvent(**row._asdict()) for row in rows]

    async def remove(self, address: str) -> bool:
        """Send to ``address`` again (after the owner fixed their mailbox, say).

        Returns:
            Whether it was suppressed.
        """
        async with self.database.session() as session:
            result = await session.execute(
                delete(email_suppressions).where(email_suppressions.c.address == mailbox(address))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
