"""Idempotency keys: the answers kept for 24 hours, replayed to a retry of the same request."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omnistack_core.testing._stripe.errors import StripeError

IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The first answer to a request with an idempotency key, and what the request was."""

    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]
    request_id: str
    at: float


class IdempotentAnswers:
    """The answers kept by idempotency key, on the server's clock (``clock``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._answers: dict[str, StoredAnswer] = {}

    def keep(
        self,
        key: str,
        *,
        method: str,
        path: str,
        params: dict[str, Any],
        body: dict[str, Any],
        request_id: str,
    ) -> None:
        """Keep a successful answer under ``key``."""
        self._answers[key] = StoredAnswer(
            method, path, params, 200, copy.deepcopy(body), request_id, self._clock()
        )

    def replay(
        self, key: str, method: str, path: str, params: dict[str, Any]
    ) -> StoredAnswer | None:
        """The answer to replay under ``key``; None when there is none (or it expired).

        Raises:
            StripeError: ``idempotency_error``: the key was first used for another endpoint
                or with other parameters.
        """
        stored = self._answers.get(key)
        if stored is not None and self._clock() - stored.at >= IDEMPOTENCY_WINDOW_SECONDS:
            del self._answers[key]
            return None
        if stored is None:
            return None
        if (stored.method, stored.path) != (method, path):
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{stored.method} {stored.path}' vs '{method} {path}'). Try "
                f"using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if stored.params != params:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        return stored
