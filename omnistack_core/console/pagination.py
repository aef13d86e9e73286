"""Keyset pagination for the console's lists: an opaque cursor in ``?after=``, never an offset.

A cursor is the sort key of the last row of a page; the next page starts strictly after it,
so a page costs one index range read however deep it is, and rows inserted meanwhile do not
shift what the operator sees.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode


def encode_cursor(*key: Any) -> str:
    """An ``after=`` value holding ``key`` (JSON values)."""
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(text: str, *parts: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The key an ``after=`` value holds, each part converted; None when absent or malformed.

    Args:
        text: The ``after=`` value.
        *parts: A converter per part of the key (``float``, ``str``, :func:`moment`): a value
            with another number of parts, or one a converter refuses, is no cursor.
    """
    if not text:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(value, list) or len(value) != len(parts):
            return None
        return tuple(convert(part) for convert, part in zip(parts, value, strict=True))
    except (ValueError, TypeError):  # a hand-edited URL: start from the first page
        return None


def moment(text: str) -> datetime:
    """A cursor's time part: ISO 8601, as :func:`encode_cursor` wrote it."""
    return datetime.fromisoformat(text)


def page_url(path: str, filters: dict[str, str], after: str | None = None) -> str:
    """The URL of a list page with its filters (empty ones left out) and cursor."""
    query = {key: value for key, value in filters.items() if value}
    if after:
        query["after"] = after
    return f"{path}?{urlencode(query)}" if query else path
