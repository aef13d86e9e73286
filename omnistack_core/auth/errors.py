"""The auth module's exceptions.

::

    OmniStackError
     └── AuthError
          ├── InvalidTokenError       the token cannot be trusted (401)
          └── AuthUnavailableError    the issuer's keys cannot be had right now (503)
"""

from __future__ import annotations

from omnistack_core.errors import OmniStackError


class AuthError(OmniStackError):
    """Root of the auth module's errors."""


class InvalidTokenError(AuthError):
    """The token is malformed, forged, expired, or not meant for this service.

    The message says why, for debug logs; clients only ever get a generic 401.
    """


class AuthUnavailableError(AuthError):
    """No signing keys: the issuer's JWKS could not be fetched and none are cached."""
