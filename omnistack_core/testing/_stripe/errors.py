"""Stripe's error answers, raised by whatever refuses a request and answered by the server."""

from __future__ import annotations

from collections.abc import Mapping


class StripeError(Exception):
    """An error answer: its status, the fields of its ``error`` object, its extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - Stripe's own field name
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.fields: dict[str, str] = {"message": message, "type": type}
        if code is not None:
            self.fields["code"] = code
            self.fields["doc_url"] = f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"
        if param is not None:
            self.fields["param"] = param
        if decline_code is not None:
            self.fields["decline_code"] = decline_code
        self.headers = dict(headers or {})


def missing(param: str) -> StripeError:
    """``parameter_missing`` for a required ``param``."""
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def no_such(kind: str, object_id: str, param: str, status: int = 400) -> StripeError:
    """``resource_missing``: 404 for the object in the path, 400 for a reference in a create."""
    return StripeError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )
