"""The interface a chat provider implements, and what the adapters share."""

from __future__ import annotations

import email.utils
import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar

from omnistack_core.ai.errors import (
    AIProviderError,
    AIRateLimitError,
    AIRequestError,
    AITimeoutError,
)
from omnistack_core.ai.types import ChatResponse, ProviderRequest, StreamEvent


class ChatProvider(ABC):
    """A provider's chat API behind the module's types.

    ``chat`` and ``stream`` raise only :class:`~omnistack_core.ai.AIProviderError` (and its
    subclasses) for the provider's failures; the client decides about retries and fallbacks.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    async def chat(self, request: ProviderRequest) -> ChatResponse:
        """One answer."""

    @abstractmethod
    def stream(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        """The answer as it is written: deltas, then the whole :class:`ChatResponse`.

        Closing the iterator early (or cancelling the task iterating it) closes the
        provider's connection.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close the provider's connections."""


def status_error(
    provider: str, status: int, message: str, headers: Mapping[str, str]
) -> AIProviderError:
    """The error for an HTTP error answer: 408, 409, 429 and 5xx may pass; the rest will not."""
    if status == 429:
        return AIRateLimitError(
            message, provider=provider, status=status, retry_after=retry_after(headers)
        )
    if status in (408, 409) or status >= 500:
        return AIProviderError(
            message, provider=provider, status=status, retry_after=retry_after(headers)
        )
    return AIRequestError(message, provider=provider, status=status)


def timeout_error(provider: str) -> AITimeoutError:
    """The error for a request that got no answer in time."""
    return AITimeoutError("no answer within the timeout", provider=provider)


def connection_error(provider: str, message: str) -> AIProviderError:
    """The error for a request that could not reach the provider."""
    return AIProviderError(f"connection failed: {message}", provider=provider)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """A tool call's arguments from the model's JSON.

    Models occasionally write invalid JSON; it is kept under ``_raw`` for the tool's own
    validation to report back to the model.
    """
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}
