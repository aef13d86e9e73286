"""The operator's credential: ``Authorization: Bearer <METRICS_TOKEN>``.

The metrics endpoint requires it when set; readiness shows its error detail to callers that
present it.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr
from starlette.requests import HTTPConnection


def presents_token(connection: HTTPConnection, token: SecretStr) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``.

    Compared in constant time, so the answer's timing says nothing about the token.

    Args:
        connection: The request.
        token: The expected token.
    """
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        credentials.strip().encode(), token.get_secret_value().encode()
    )
