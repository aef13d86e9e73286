"""Keyset pagination for the console's lists: an opaque cursor in ``?after=``, never an offset.

A cursor is the sort key of the last row of a page; the next page starts strictly after it,
so a page costs one index range read however deep it is, and rows inserted meanwhile do not
shift what the operator sees.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode


def encode_cursor(*key: Any) -> str:
    """An ``after=`` value holding ``key`` (JSON values)."""
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any] | None:
    """The key an ``after=`` value holds; None when it is absent or malformed."""
    if not text:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def page_url(path: str, filters: dict[str, str], after: str | None = None) -> str:
    """The URL of a list page with its filters (empty ones left out) and cursor."""
    query = {key: value for key, value in filters.items() if value}
    if after:
        query["after"] = after
    return f"{path}?{urlencode(query)}" if query else path
