"""The console provider: logs each message instead of sending it (the development default)."""

from __future__ import annotations

import logging
import uuid

from omnistack_core.email.message import EmailMessage
from omnistack_core.email.provider import EmailProvider

logger = logging.getLogger("omnistack.email")


class ConsoleProvider(EmailProvider):
    """Writes each message to the ``omnistack.email`` log: headers, then the text body.

    Attachments are listed by name and size, never dumped. Nothing leaves the process.
    """

    name = "console"

    async def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        """Log ``message`` and answer a made-up id."""
        message_id = f"console-{uuid.uuid4()}"
        lines = [
            f"From: {message.from_}",
            f"To: {', '.join(message.to)}",
        ]
        if message.cc:
            lines.append(f"Cc: {', '.join(message.cc)}")
        if message.bcc:
            lines.append(f"Bcc: {', '.join(message.bcc)}")
        if message.reply_to:
            lines.append(f"Reply-To: {', '.join(message.reply_to)}")
        lines.append(f"Subject: {message.subject}")
        lines += [f"{name}: {value}" for name, value in message.headers.items()]
        if message.tags:
            lines.append("Tags: " + ", ".join(f"{k}={v}" for k, v in message.tags.items()))
        lines += [
            f"Attachment: {attachment.filename} ({attachment.media_type}, "
            f"{len(attachment.content)} bytes)"
            for attachment in message.attachments
        ]
        logger.info(
            "Email not sent (EMAIL_PROVIDER=console), id %s, key %s:\n%s\n\n%s",
            message_id,
            idempotency_key,
            "\n".join(lines),
            message.text,
        )
        return message_id
