"""The AI module's exceptions.

::

    OmniStackError
     └── AIError
          ├── AIConfigurationError   no model, or one whose provider is unknown or has no key
          │                          (a ProblemError: 503 "AI is not configured: set ...")
          ├── AIProviderError        the provider failed (a ProblemError: 503, or 502)
          │    ├── AIRateLimitError  429: retried after its Retry-After, then fallen back
          │    ├── AITimeoutError    no answer within the timeout: retried, then fallen back
          │    └── AIRequestError    a 4xx refusal of the request: never retried or fallen back
          ├── AIStreamError          the stream broke after part of the answer was delivered
          ├── StructuredOutputError  the answer did not fit the model, even after one repair
          └── QuotaExceededError     the user's budget for the period is spent (429)

``openai`` and ``anthropic`` exceptions are translated in the provider adapters, so none
reaches callers.
"""

from __future__ import annotations

from collections.abc import Sequence

from omnistack_core.errors import OmniStackError, ProblemError


class AIError(OmniStackError):
    """Root of the AI module's errors."""


class AIConfigurationError(AIError, ProblemError, ValueError):
    """No model to call, or a model whose provider is unknown or has no API key.

    Clients get 503 "AI is not configured: set OPENAI_API_KEY." (naming the variables, as
    billing's 503 does); the message, for the log, says what exactly is wrong.

    Args:
        message: What is wrong.
        variables: The variables to set.
    """

    def __init__(self, message: str, variables: Sequence[str] = ()) -> None:
        detail = "AI is not configured."
        if variables:
            detail = f"AI is not configured: set {' or '.join(variables)}."
        ProblemError.__init__(self, 503, detail)
        self.message = message
        self.variables = tuple(variables)

    def __str__(self) -> str:
        return self.message


class AIProviderError(AIError, ProblemError):
    """A provider call failed.

    Args:
        message: What happened (for logs; clients get a generic detail).
        provider: ``openai`` or ``anthropic``.
        status: The provider's HTTP status, when it answered.
        retryable: Whether trying again (or another model) may succeed.
        retry_after: Seconds the provider asked to wait.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
        ProblemError.__init__(
            self,
            503 if retryable else 502,
            "The AI provider is unavailable; try again shortly."
            if retryable
            else "The AI provider refused the request.",
            headers=headers,
        )
        self.message = message
        self.provider = provider
        self.provider_status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f" ({self.provider_status})" if self.provider_status else ""
        return f"{self.provider}{status}: {self.message}"


class AIRateLimitError(AIProviderError):
    """The provider answered 429."""


class AITimeoutError(AIProviderError):
    """The provider did not answer within the timeout."""


class AIRequestError(AIProviderError):
    """The provider refused the request itself (400, 401, 403, 404, 413, 422)."""

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(message, provider=provider, status=status, retryable=False)


class AIStreamError(AIError):
    """A stream failed after part of the answer had been delivered; it is not retried."""


class StructuredOutputError(AIError):
    """The model's answer did not validate against the requested model, twice.

    Attributes:
        text: The last answer.
    """

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class QuotaExceededError(AIError, ProblemError):
    """The user's AI budget for the period is spent: 429 with ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        ProblemError.__init__(self, 429, detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after
