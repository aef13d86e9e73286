"""The interface every email provider implements."""

from __future__ import annotations

import abc
from typing import ClassVar

from omnistack_core.email.message import EmailMessage


class EmailProvider(abc.ABC):
    """Sends messages: Resend, SMTP, the console, memory, or your own.

    A base class rather than a protocol: a method added later comes with a default, so
    providers written today keep working.

    Attributes:
        name: Short, lower-case name, used in logs and errors (``resend``).
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    async def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        """Send ``message`` once, however often it is called with the same key.

        Args:
            message: A validated message whose ``from_`` is set.
            idempotency_key: Identifies this send: a repeated call with the same key must not
                deliver the message again (within the provider's window).

        Returns:
            The provider's id of the sent message.

        Raises:
            EmailDeliveryError: The provider refused the message; retrying will not help.
            EmailTransientError: The provider cannot take it now; retry later.
        """

    async def aclose(self) -> None:
        """Release connections; called once at shutdown."""
        return
