"""The bounds ``omnistack serve`` holds every connection to, on uvicorn's h11 protocol.

uvicorn bounds idle time between requests (``timeout_keep_alive``), connections
(``limit_concurrency``) and, through h11, a header that has not ended
(``h11_max_incomplete_event_size``). What it leaves open, and this module closes:

- a connection that never sends a byte: uvicorn arms its keep-alive timer only after a first
  response, so such a connection stays open; here it is armed when the connection opens;
- a header sent slowly: every byte cancels the keep-alive timer, so a client sending a line a
  second holds the connection forever; here the header must end within a deadline counted
  from its first byte;
- a body sent slowly, or shorter than its ``Content-Length``: nothing times it; here the body
  must end within a deadline counted from the end of the header;
- a header larger than the bound that arrives whole in one read: h11 only measures a header
  still incomplete, so it parses it; here it is answered 431 before the app sees it. A
  header over the bound that is still incomplete is answered 431 by h11's own limit, so no
  connection buffers more than the bound and one read (256 KiB).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from omnistack_core.settings import Settings

HEADER_TOO_LARGE = 431


@dataclass(frozen=True, slots=True)
class ServerBounds:
    """What a connection may take: bytes of header, seconds of header, body and idleness.

    Attributes:
        max_header_bytes: The request line and header fields together.
        header_seconds: From a request's first byte to the end of its header.
        body_seconds: From the end of the header to the end of the body.
        keepalive_seconds: Idle, before the first request or between requests.
        max_connections: Open connections and requests in progress; above it, 503.
    """

    max_header_bytes: int = 65_536
    header_seconds: float = 10.0
    body_seconds: float = 30.0
    keepalive_seconds: int = 5
    max_connections: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerBounds:
        """The bounds ``SERVER_*`` sets."""
        return cls(
            max_header_bytes=settings.server_max_header_bytes,
            header_seconds=settings.server_header_timeout_seconds,
            body_seconds=settings.server_body_timeout_seconds,
            keepalive_seconds=settings.server_keepalive_seconds,
            max_connections=settings.server_max_connections,
        )

    def protocol(self) -> type[BoundedH11Protocol]:
        """The h11 protocol class holding connections to these bounds, for ``Config(http=...)``."""
        return type("BoundedH11Protocol", (BoundedH11Protocol,), {"bounds": self})


def _header_too_large(max_bytes: int) -> bytes:
    """The problem+json body of a 431."""
    problem = {
        "type": "about:blank",
        "title": STATUS_PHRASES[HEADER_TOO_LARGE].decode(),
        "status": HEADER_TOO_LARGE,
        "detail": f"the request line and header fields exceed {max_bytes} bytes",
    }
    return json.dumps(problem).encode()


def _header_size(scope: Scope) -> int:
    # As sent: "METHOD target HTTP/1.1\r\n" and "name: value\r\n" per field.
    line = len(scope["method"]) + len(scope["raw_path"]) + len(scope["query_string"]) + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def refuse_large_headers(app: ASGIApp, max_bytes: int) -> ASGIApp:
    """``app``, with requests whose header is larger than ``max_bytes`` answered 431."""
    body = _header_too_large(max_bytes)

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _header_size(scope) <= max_bytes:
            await app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": HEADER_TOO_LARGE,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return bounded


class BoundedH11Protocol(H11Protocol):
    """The h11 protocol of uvicorn with deadlines for headers, bodies and silent connections."""

    bounds: ClassVar[ServerBounds] = ServerBounds()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.app = refuse_large_headers(self.app, self.bounds.max_header_bytes)
        self._header_bytes = 0
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Open the connection with its idle timer already running."""
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def data_received(self, data: bytes) -> None:
        """Count a header's bytes and start its deadline at its first byte."""
        if self.conn.their_state is h11.IDLE:
            self._header_bytes += len(data)
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(
                    self.bounds.header_seconds, self._cut_off
                )
        super().data_received(data)
        self._follow_the_request()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the deadlines with the connection."""
        self._end_header_deadline()
        self._end_body_deadline()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        """Hand the connection to the WebSocket protocol, which no HTTP deadline concerns."""
        self._upgraded = True
        self._end_header_deadline()
        self._end_body_deadline()
        super().handle_websocket_upgrade(event)

    def send_400_response(self, msg: str) -> None:
        """Answer 431 when h11 gave up on a header longer than the bound, else uvicorn's 400."""
        if self._header_bytes <= self.bounds.max_header_bytes:
            super().send_400_response(msg)
            return
        body = _header_too_large(self.bounds.max_header_bytes)
        headers = [(b"content-type", b"application/problem+json"), (b"connection", b"close")]
        reason = STATUS_PHRASES[HEADER_TOO_LARGE]
        for event in (
            h11.Response(status_code=HEADER_TOO_LARGE, headers=headers, reason=reason),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _follow_the_request(self) -> None:
        if self._upgraded:
            return
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._header_bytes = 0
            self._end_header_deadline()
        if state is h11.SEND_BODY:
            if self._body_deadline is None:
                self._body_deadline = self.loop.call_later(self.bounds.body_seconds, self._cut_off)
        else:
            self._end_body_deadline()

    def _end_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _end_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _cut_off(self) -> None:
        # Closing is the answer: the app, if it is reading the body, sees a disconnect.
        if not self.transport.is_closing():
            self.transport.close()
