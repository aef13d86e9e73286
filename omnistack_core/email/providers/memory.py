"""The memory provider: an outbox in the process, for tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from omnistack_core.email.message import EmailMessage, parse_address
from omnistack_core.email.provider import EmailProvider


@dataclass(frozen=True, slots=True)
class SentEmail:
    """A message the memory provider took.

    Attributes:
        id: The id it answered.
        message: The message, as sent.
        idempotency_key: The key it was sent with.
    """

    id: str
    message: EmailMessage
    idempotency_key: str


class MemoryProvider(EmailProvider):
    """Keeps messages in :attr:`outbox` instead of sending them.

    Like Resend, a second send with the same idempotency key answers the first id and adds
    nothing, so tests see what a real provider would deliver.
    """

    name = "memory"

    def __init__(self) -> None:
        self.outbox: list[SentEmail] = []
        self._by_key: dict[str, SentEmail] = {}

    async def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        """Add ``message`` to the outbox, unless its key was already used."""
        existing = self._by_key.get(idempotency_key)
        if existing is not None:
            return existing.id
        sent = SentEmail(f"memory-{uuid.uuid4()}", message, idempotency_key)
        self.outbox.append(sent)
        self._by_key[idempotency_key] = sent
        return sent.id

    def sent_to(self, address: str) -> list[EmailMessage]:
        """The messages whose ``to``, ``cc`` or ``bcc`` include ``address``."""
        wanted = parse_address(address).email.lower()
        return [
            sent.message
            for sent in self.outbox
            if any(parse_address(r).email.lower() == wanted for r in sent.message.recipients)
        ]

    def clear(self) -> None:
        """Empty the outbox and forget the keys."""
        self.outbox.clear()
        self._by_key.clear()
