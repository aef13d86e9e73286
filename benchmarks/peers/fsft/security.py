"""HS256 access tokens shaped as the template's: ``{"exp": ..., "sub": "<user id>"}``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"


def create_access_token(subject: str | Any, expires_delta: timedelta, secret: str) -> str:
    """Sign a token for ``subject`` that expires ``expires_delta`` from now."""
    expire = datetime.now(UTC) + expires_delta
    return jwt.encode({"exp": expire, "sub": str(subject)}, secret, algorithm=ALGORITHM)


def mint_token(user_id: str, secret: str, minutes: int = 60 * 24 * 8) -> str:
    """A token for a seeded user, as the template's login route would issue (8 days by default).

    The peer has no login route: the benchmark signs its tokens with the peer's secret.
    """
    return create_access_token(user_id, timedelta(minutes=minutes), secret)
