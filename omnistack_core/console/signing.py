"""Signed, expiring tokens: console links and session cookies, HMAC-SHA256 over JSON.

A token is ``<base64url(JSON payload)>.<base64url(HMAC)>``; the key is derived from
``SECRET_KEY`` and the token's purpose, so a link can never be replayed as a cookie or
the other way round, and nothing signed elsewhere with ``SECRET_KEY`` is accepted here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Literal

Purpose = Literal["console-link", "console-session"]


class BadSignatureError(ValueError):
    """The token was not signed with this key and purpose, is malformed, or has expired."""


def _key(secret_key: str, purpose: Purpose) -> bytes:
    return hmac.new(secret_key.encode(), f"omnistack:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret_key: str, purpose: Purpose, payload: dict[str, Any], *, seconds: float) -> str:
    """A token carrying ``payload`` that :func:`verify` accepts for ``seconds``."""
    body = _b64(
        json.dumps({**payload, "exp": int(time.time() + seconds)}, separators=(",", ":")).encode()
    )
    signature = hmac.new(_key(secret_key, purpose), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify(secret_key: str, purpose: Purpose, token: str) -> dict[str, Any]:
    """The payload of ``token``.

    Raises:
        BadSignatureError: The token is forged, malformed, for another purpose, or expired.
    """
    body, _, signature = token.partition(".")
    expected = hmac.new(_key(secret_key, purpose), body.encode(), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(_unb64(signature), expected)
        payload = json.loads(_unb64(body)) if valid else None
    except (ValueError, UnicodeDecodeError):
        raise BadSignatureError("malformed token") from None
    if not isinstance(payload, dict):
        raise BadSignatureError("bad signature")
    if not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
        raise BadSignatureError("expired")
    return payload
