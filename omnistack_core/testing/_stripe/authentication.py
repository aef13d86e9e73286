"""Authentication: the API key a request presents, and Stripe's answers to a wrong one."""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from omnistack_core.testing._stripe.errors import StripeError

_KEY_PREFIX = re.compile(r"(?:sk|rk|pk)_(?:test|live)_")
_MISSING_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://docs.stripe.com/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def authenticate(headers: dict[str, str], api_key: str) -> None:
    """Refuse, with a 401, a request that does not present ``api_key``."""
    key = _presented_key(headers)
    if key is None:
        raise StripeError(401, _MISSING_KEY)
    if not hmac.compare_digest(key.encode(), api_key.encode()):
        raise StripeError(401, f"Invalid API Key provided: {_masked(key)}")


def invalid_key_message(headers: dict[str, str]) -> str:
    """What Stripe answers when the key the request presents is missing or wrong."""
    key = _presented_key(headers)
    return _MISSING_KEY if key is None else f"Invalid API Key provided: {_masked(key)}"


def _presented_key(headers: dict[str, str]) -> str | None:
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return credential.strip() or None
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(credential.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user.partition(":")[0] or None
    return None


def _masked(key: str) -> str:
    match = _KEY_PREFIX.match(key)
    prefix = match.group(0) if match else ""
    rest = key[len(prefix) :]
    shown = rest[-4:] if len(rest) > 4 else ""
    return prefix + "*" * (len(rest) - len(shown)) + shown
