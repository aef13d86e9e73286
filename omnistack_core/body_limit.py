"""A ceiling on request body size, answered with a problem+json 413.

``BodySizeLimitMiddleware`` holds every request to ``MAX_REQUEST_BODY_BYTES``;
:func:`read_bounded_body` holds one endpoint (a webhook) to a limit of its own.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnistack_core.errors import ProblemError, problem_response


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs; a chunked
    body is counted as it is read and refused as soon as it passes the limit, so an endless
    upload never fills memory. Requests without a chunked body pass untouched. Pure ASGI.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"The request body is larger than {max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope["headers"])
        detail = self.detail
        if declared is not None and declared > self.max_bytes:
            await problem_response(scope["path"], ProblemError(413, detail))(scope, receive, send)
            return
        if declared is not None or not chunked:
            # The server delivers no more than Content-Length, and no body without either header.
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised where the app reads the body, so its exception handlers answer.
                    raise HTTPException(413, detail=detail)
            return message

        await self.app(scope, counted_receive, send)


def _body_headers(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    declared: int | None = None
    chunked = False
    for key, value in headers:
        if key == b"content-length" and value.isdigit():
            declared = int(value)
        elif key == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def read_bounded_body(request: Request, max_bytes: int, *, what: str = "Request") -> bytes:
    """The raw request body, refused with 413 once it passes ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused unread; a body without one is
    counted as it streams in, so memory holds at most ``max_bytes``.

    Raises:
        ProblemError: 413.
    """
    too_large = ProblemError(413, f"{what} bodies are limited to {max_bytes} bytes.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
