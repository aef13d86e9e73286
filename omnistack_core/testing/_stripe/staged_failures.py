"""Staged failures: the errors ``LocalStripe.fail_next`` queues, in Stripe's shape."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from omnistack_core.testing._stripe.authentication import invalid_key_message
from omnistack_core.testing._stripe.errors import StripeError


@dataclass(frozen=True, slots=True)
class StagedFailure:
    """One failure to answer; None stands for Stripe's usual value for the status."""

    status: int
    type: str | None
    code: str | None
    message: str | None
    decline_code: str | None
    param: str | None
    retry_after: int | None
    path: str | None


class StagedFailures:
    """The failures still to answer, oldest first."""

    def __init__(self) -> None:
        self._staged: deque[StagedFailure] = deque()

    def add(self, failure: StagedFailure, times: int) -> None:
        """Answer the next ``times`` matching requests with ``failure``."""
        self._staged.extend(failure for _ in range(times))

    def raise_next(self, path: str, headers: dict[str, str]) -> None:
        """Raise the oldest failure staged for ``path`` (or any path), and forget it."""
        staged = next((s for s in self._staged if s.path in (None, path)), None)
        if staged is None:
            return
        self._staged.remove(staged)
        status = staged.status
        defaults: dict[int, tuple[str, str | None, str]] = {
            400: ("invalid_request_error", None, "Invalid request."),
            401: ("invalid_request_error", None, invalid_key_message(headers)),
            402: ("card_error", "card_declined", "Your card was declined."),
            403: (
                "invalid_request_error",
                None,
                "The provided key does not have the required permissions for this endpoint.",
            ),
            404: ("invalid_request_error", "resource_missing", "No such object."),
            409: (
                "idempotency_error",
                "idempotency_key_in_use",
                (
                    "There is currently another in-progress request using this idempotent key "
                    "(that probably means you submitted twice, and the other request is still "
                    "going through). Please try again later."
                ),
            ),
            429: (
                "invalid_request_error",
                "rate_limit",
                (
                    "Request rate limit exceeded. Learn more about rate limits here "
                    "https://docs.stripe.com/rate-limits."
                ),
            ),
        }
        server_error = ("api_error", None, "An unknown error occurred")
        type_, code, message = defaults.get(
            status,
            server_error
            if status >= 500
            else ("invalid_request_error", None, "An error occurred."),
        )
        decline_code = staged.decline_code
        if decline_code is None and status == 402 and staged.type in (None, "card_error"):
            decline_code = "generic_decline"
        extra = {} if staged.retry_after is None else {"Retry-After": str(staged.retry_after)}
        raise StripeError(
            status,
            staged.message or message,
            type=staged.type or type_,
            code=staged.code or code,
            param=staged.param,
            decline_code=decline_code,
            headers=extra,
        )
