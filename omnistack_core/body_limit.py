"""A ceiling on request body size, answered with a problem+json 413."""

from __future__ import annotations

from starlette.exceptions import HTTPException
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope["headers"])
        detail = f"The request body is larger than {self.max_bytes} bytes."
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
