"""The id of the request being served, for logs, error bodies, error reports and jobs.

A context variable: set by the observability middleware for the duration of one request, it
follows the request into everything that runs on its behalf, including thread-pool calls.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from random import getrandbits

MAX_REQUEST_ID_LENGTH = 128
# Letters, digits and the punctuation tracing systems use; never CR, LF or spaces, so an
# incoming id can go into a log line and a response header as it is.
_WELL_FORMED = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_REQUEST_ID_LENGTH}}}")

request_id_var: ContextVar[str | None] = ContextVar("omnistack_request_id", default=None)
"""The context variable itself, for code that sets it (the middleware, job runners)."""


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return request_id_var.get()


def new_request_id() -> str:
    """A fresh, unique request id (32 hex characters).

    128 random bits from the ``random`` module, which is reseeded in every forked worker:
    unique like a UUID4, without a system call per request. Ids identify; they are not secrets.
    """
    return f"{getrandbits(128):032x}"


def accepted_request_id(incoming: str | None) -> str:
    """The incoming ``X-Request-ID`` when it is well-formed, else a fresh id.

    Args:
        incoming: The header's value, if the client sent one.

    Returns:
        An id safe to log and to echo in a header.
    """
    if incoming is not None and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return new_request_id()
