"""Remove credentials from text before it reaches a log line, a response or an error report."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@ — the password part, whatever the scheme (postgres, redis, amqp...).
_URL_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@\s]*(?=@)")


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, for logs and summaries.

    Args:
        url: Any URL (database, Redis, DSN).

    Returns:
        The URL without its password; a string that does not parse as a URL is fully masked.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return MASK
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:{MASK}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords and each of ``secrets`` wherever they occur in ``text``.

    Args:
        text: Free text, such as an exception message.
        secrets: Values that must not appear; empty and very short ones are ignored, since
            masking them would mangle ordinary words.

    Returns:
        The text with the credentials replaced by ``***``.
    """
    text = _URL_PASSWORD.sub(rf"\g<prefix>{MASK}", text)
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
