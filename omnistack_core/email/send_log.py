"""The sends the email module made, and what became of them: the ``email_sends`` table.

One row per idempotency key: the sender writes it after the provider answered (``sent``,
``failed``) or after suppression left nobody to send to (``skipped``), in a transaction of
its own; a retry of the same key (the send job's) updates that row. Resend's delivery
webhooks then move the row of the email they report (by the provider's message id) to
``delivered``, ``bounced``, ``complained``...

Recording never makes a send fail or run twice: a failure to write is logged, and the send's
result stands. No address is stored whole: the first recipient is kept masked
(``a***@example.com``), with the number of recipients, for an operator to tell sends apart.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.db import Database
from omnistack_core.db.upsert import Upsert
from omnistack_core.email.suppression import email_metadata, masked_address

logger = logging.getLogger("omnistack.email")

SUBJECT_CHARS = 200
"""The longest subject stored; a longer one is cut."""
ERROR_CHARS = 500
"""The longest error stored; a longer one is cut."""

SENDER_STATUSES = ("sent", "skipped", "failed")
"""What the sender records; delivery webhooks add the provider's statuses after ``sent``."""

# Where each delivery event's status stands in an email's life; the sender's own come first.
DELIVERY_STATUS_RANKS = {
    "sent": 1,
    "scheduled": 1,
    "delayed": 2,
    "delivered": 3,
    "opened": 4,
    "clicked": 5,
    "bounced": 6,
    "complained": 6,
    "failed": 6,
    "suppressed": 6,
}

email_sends = Table(
    "email_sends",
    email_metadata,
    Column("id", String(36), primary_key=True, doc="A random UUID: the keyset's tie-breaker."),
    Column("idempotency_key", String(256), nullable=False, unique=True, doc="The send's key."),
    Column("provider", String(32), nullable=False, doc="resend, smtp, console, memory..."),
    Column("message_id", String(255), nullable=True, doc="The provider's id of the message."),
    Column("subject", String(SUBJECT_CHARS), nullable=False, doc="The subject, cut to 200."),
    Column("recipients", Integer, nullable=False, doc="To, cc and bcc addresses sent to."),
    Column("first_recipient", String(330), nullable=False, doc="The first, masked."),
    Column("status", String(32), nullable=False, doc="sent, skipped, failed, delivered..."),
    Column("error", String(ERROR_CHARS), nullable=True, doc="Why it failed, when it did."),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The console pages through sends newest first, all of them or those of one status.
    Index("ix_email_sends_created", "created_at", "id"),
    Index("ix_email_sends_status_created", "status", "created_at", "id"),
    # Delivery webhooks find the send they report by the provider's id.
    Index("ix_email_sends_message_id", "message_id"),
)


@dataclass(frozen=True, slots=True)
class EmailSend:
    """One send as recorded in ``email_sends``.

    Attributes:
        id: The row's id.
        idempotency_key: The send's key.
        provider: The provider's name.
        message_id: The provider's id of the message; None when skipped or failed.
        subject: The subject, at most 200 characters.
        recipients: How many addresses it went to.
        first_recipient: The first ``to`` address, masked (``a***@example.com``).
        status: ``sent``, ``skipped``, ``failed``, or the latest delivery event's
            (``delivered``, ``bounced``...).
        error: Why it failed.
        created_at: When it was first recorded.
        updated_at: When its status last changed.
    """

    id: str
    idempotency_key: str
    provider: str
    message_id: str | None
    subject: str
    recipients: int
    first_recipient: str
    status: str
    error: str | None
    created_at: datetime
    updated_at: datetime


_ADDRESS = re.compile(r"([A-Za-z0-9_%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def _clean(text: str, limit: int) -> str:
    # PostgreSQL's text types refuse NUL, and a provider's error may hold one.
    return text.replace("\x00", "")[:limit]


def _masked_error(error: str) -> str:
    # Providers quote the address they refuse; the table keeps none whole.
    return _clean(_ADDRESS.sub(r"\1***@\2", error), ERROR_CHARS)


class SendLog:
    """Reads and writes ``email_sends``.

    Args:
        database: The app's database.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        # A status the provider reported (delivered, bounced) is not undone by a repeated
        # send of the same key, which the provider de-duplicates anyway.
        self._upsert = Upsert(
            email_sends,
            key=["idempotency_key"],
            update=[
                "provider",
                "message_id",
                "subject",
                "recipients",
                "first_recipient",
                "status",
                "error",
                "updated_at",
            ],
            where=lambda _new: email_sends.c.status.in_(SENDER_STATUSES),
        )

    async def record(
        self,
        *,
        idempotency_key: str,
        provider: str,
        status: str,
        subject: str,
        recipients: tuple[str, ...],
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record what became of a send; never raises (a failure is logged).

        Args:
            idempotency_key: The send's key: a second record of it updates the first.
            provider: The provider's name.
            status: ``sent``, ``skipped`` or ``failed``.
            subject: The message's subject.
            recipients: Every address it was for (only the count and the first, masked, are
                kept).
            message_id: The provider's id of the message.
            error: Why it failed.
        """
        now = datetime.now(UTC)
        values = {
            "id": str(uuid.uuid4()),
            "idempotency_key": idempotency_key,
            "provider": provider[:32],
            "message_id": message_id[:255] if message_id else None,
            "subject": _clean(subject, SUBJECT_CHARS),
            "recipients": len(recipients),
            "first_recipient": masked_address(recipients[0]) if recipients else "",
            "status": status,
            "error": _masked_error(error) if error else None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.database.session() as session:
                await self._upsert(session, values)
        except Exception as exc:  # noqa: BLE001 - the send happened; only its record is lost
            logger.warning(
                "Could not record a %s email send (key %s): %s: %s",
                status,
                idempotency_key,
                type(exc).__name__,
                exc,
            )

    @staticmethod
    async def report(session: AsyncSession, message_id: str, status: str) -> bool:
        """Move the send whose provider id is ``message_id`` to a delivery event's status.

        Webhooks arrive in any order (``delivered`` before ``sent``, say), so a status only
        replaces one that comes before it in an email's life: sent, delayed, delivered,
        opened, clicked, then bounced, complained, failed or suppressed. Other events
        (``contact.created``) change nothing.

        Args:
            session: Write in this session's transaction (the webhook's).
            message_id: The provider's id of the message.
            status: The event's provider-neutral name (``delivered``, ``bounced``...).

        Returns:
            Whether a recorded send was updated.
        """
        rank = DELIVERY_STATUS_RANKS.get(status)
        if rank is None:
            return False
        current = await session.scalar(
            select(email_sends.c.status).where(email_sends.c.message_id == message_id).limit(1)
        )
        if current is None or DELIVERY_STATUS_RANKS.get(current, 0) > rank:
            return False
        await session.execute(
            update(email_sends)
            .where(email_sends.c.message_id == message_id)
            .values(status=status, updated_at=datetime.now(UTC))
        )
        return True

    async def page(
        self,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
        status: str | None = None,
    ) -> list[EmailSend]:
        """A page of sends, newest first.

        Args:
            after: The last send's ``(created_at, id)`` on the previous page.
            limit: At most this many.
            status: Only sends with this status.
        """
        table = email_sends
        query = select(table).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        if status:
            query = query.where(table.c.status == status)
        if after is not None:
            created, last_id = after
            query = query.where(
                or_(
                    table.c.created_at < created,
                    and_(table.c.created_at == created, table.c.id < last_id),
                )
            )
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [EmailSend(**row._asdict()) for row in rows]
