"""The email module's exceptions.

::

    OmniStackError
     └── EmailError
          ├── InvalidMessageError        the message cannot be sent as it is; nothing was sent
          │                              (also a ValueError)
          ├── EmailTemplateError         a template is missing or does not render
          ├── EmailDeliveryError         the provider refused the message; retrying will not help
          ├── EmailTransientError        the provider cannot take it now; retry (``retry_after``)
          └── WebhookVerificationError   a delivery webhook is not signed, fresh or well-formed

Provider SDK and SMTP errors are translated into these at the provider's boundary, so no
``resend`` or ``aiosmtplib`` exception reaches callers.
"""

from __future__ import annotations

from collections.abc import Sequence

from omnistack_core.errors import OmniStackError


class EmailError(OmniStackError):
    """Root of the email module's errors."""


class InvalidMessageError(EmailError, ValueError):
    """The message is refused before anything is sent; ``problems`` lists every reason.

    Args:
        problems: One sentence per problem, naming the field (``to[1]``, ``headers``...).
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"The email cannot be sent ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class EmailTemplateError(EmailError):
    """An email template is missing, has a syntax error, or needs a value it was not given."""


class EmailDeliveryError(EmailError):
    """The provider refused the message for good (bad key, invalid field, unknown sender...).

    Args:
        message: What the provider said.
        provider: ``resend``, ``smtp``...
        status: The provider's status (HTTP status or SMTP reply code), when there is one.
        code: The provider's error name (``validation_error``), when there is one.
    """

    def __init__(
        self, message: str, *, provider: str, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code


class EmailTransientError(EmailError):
    """The provider could not take the message now (rate limit, outage, network): retry.

    Args:
        message: What went wrong.
        provider: ``resend``, ``smtp``...
        status: The provider's status (HTTP status or SMTP reply code), when there is one.
        retry_after: Seconds the provider asked us to wait (a 429's ``Retry-After``).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        """Whether the provider said "too many requests" (HTTP 429)."""
        return self.status == 429


class WebhookVerificationError(EmailError):
    """A delivery webhook is refused: missing headers, a bad signature, or a stale timestamp.

    The message says why, for logs; the sender of the request only gets a generic 400.
    """
