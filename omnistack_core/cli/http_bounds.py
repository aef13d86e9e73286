"""The bounds ``omnistack serve`` holds every connection to, on uvicorn's httptools or h11 protocol.

uvicorn bounds idle time between requests (``timeout_keep_alive``), connections
(``limit_concurrency``) and, on h11 only, a header that has not ended
(``h11_max_incomplete_event_size``). What it leaves open, and this module closes on both
protocols:

- a connection that never sends a byte: uvicorn arms its keep-alive timer only after a first
  response, so such a connection stays open; here it is armed when the connection opens;
- a header sent slowly: every byte cancels the keep-alive timer, so a client sending a line a
  second holds the connection forever; here the header must end within a deadline counted
  from its first byte;
- a body sent slowly, or shorter than its ``Content-Length``: nothing times it; here the body
  must end within a deadline counted from the end of the header;
- a header larger than the bound: httptools has no bound at all, and h11 only measures a
  header still incomplete. Here a header over the bound is answered 431 before the app sees
  it, whether it arrives whole in one read or a piece at a time; one still incomplete is cut
  off as soon as the bytes received for it pass the bound, so no connection buffers more than
  the bound and one read (256 KiB).

httptools (uvicorn's C parser, installed with ``uvicorn[standard]`` as the generated service
does) is served when it imports, since it parses faster; h11 otherwise.

The size of a header is counted as ``METHOD target HTTP/1.1`` and ``name: value`` per field,
each line with its CRLF. Measuring it costs a pass over the fields, so both protocols measure
only requests for which the bytes received could exceed the bound: a field's line is at most
one byte longer counted this way than sent (``name:value``), so a header whose bytes received
plus its number of fields is within the bound is within it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import Receive, Scope, Send
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

    def protocol(self) -> type[asyncio.Protocol]:
        """The protocol class holding connections to these bounds, for ``Config(http=...)``.

        httptools' when httptools imports, else h11's.
        """
        httptools = _bounded_httptools_protocol()
        base: type[asyncio.Protocol] = BoundedH11Protocol if httptools is None else httptools
        return type(base.__name__, (base,), {"bounds": self})


def _header_too_large(max_bytes: int) -> bytes:
    """The problem+json body of a 431."""
    problem = {
        "type": "about:blank",
        "title": STATUS_PHRASES[HEADER_TOO_LARGE].decode(),
        "status": HEADER_TOO_LARGE,
        "detail": f"the request line and header fields exceed {max_bytes} bytes",
    }
    return json.dumps(problem).encode()


def _too_large_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    """The header fields of a 431 with ``body``: the same on both protocols."""
    return [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]


def _header_size(method: bytes | str, target: int, fields: list[tuple[bytes, bytes]]) -> int:
    """The bytes of a request line with a ``target`` that long, and of ``fields``, as sent."""
    # "METHOD target HTTP/1.1\r\n" and "name: value\r\n" per field.
    return len(method) + target + 12 + sum(len(name) + len(value) + 4 for name, value in fields)


class _Deadlines:
    """The timers both bounded protocols keep: idle from connect, header, body; and the cut-off."""

    bounds: ClassVar[ServerBounds] = ServerBounds()
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_deadline: asyncio.TimerHandle | None
    _body_deadline: asyncio.TimerHandle | None
    # The protocol's own, which the idle timer below uses.
    timeout_keep_alive: int
    timeout_keep_alive_task: asyncio.TimerHandle | None
    timeout_keep_alive_handler: Callable[[], None]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Open the connection with its idle timer already running."""
        super().connection_made(transport)  # type: ignore[misc] # the protocol's, after this
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _start_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.bounds.header_seconds, self._cut_off)

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


class BoundedH11Protocol(_Deadlines, H11Protocol):
    """The h11 protocol of uvicorn with deadlines for headers, bodies and silent connections."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._served_app = self.app
        # uvicorn starts ``self.app`` for each request: the size is checked on the way in.
        self.app = self._refuse_large_headers
        self._too_large = _header_too_large(self.bounds.max_header_bytes)
        self._header_bytes = 0
        # Bytes received since h11 last had nothing to parse: those of every request it has
        # yet to hand to the app, pipelined ones included (h11 buffers them while busy).
        self._unparsed_bytes = 0
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._upgraded = False

    def data_received(self, data: bytes) -> None:
        """Count a header's bytes and start its deadline at its first byte."""
        if self.conn.their_state is h11.IDLE:
            if not self.conn.trailing_data[0]:
                # Every request before is answered and nothing of the next is buffered.
                self._unparsed_bytes = 0
            self._header_bytes += len(data)
            self._start_header_deadline()
        self._unparsed_bytes += len(data)
        super().data_received(data)
        self._follow_the_request()

    async def _refuse_large_headers(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, or answer 431 if its header is over the bound."""
        fields = scope["headers"]
        if self._unparsed_bytes + len(fields) <= self.bounds.max_header_bytes or (
            _header_size(scope["method"], self._target_length(scope), fields)
            <= self.bounds.max_header_bytes
        ):
            await self._served_app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": HEADER_TOO_LARGE,
                "headers": _too_large_headers(self._too_large),
            }
        )
        await send({"type": "http.response.body", "body": self._too_large})

    @staticmethod
    def _target_length(scope: Scope) -> int:
        query: bytes = scope["query_string"]
        return len(scope["raw_path"]) + (len(query) + 1 if query else 0)

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
        reason = STATUS_PHRASES[HEADER_TOO_LARGE]
        headers = _too_large_headers(self._too_large)
        for event in (
            h11.Response(status_code=HEADER_TOO_LARGE, headers=headers, reason=reason),
            h11.Data(data=self._too_large),
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


class _HeaderTooLargeError(Exception):
    """Raised from a parser callback to stop httptools at a header over the bound."""


# Where the httptools parser is in the request it reads.
_BETWEEN_REQUESTS = 0
_IN_HEADER = 1
_IN_BODY = 2


@functools.cache
def _bounded_httptools_protocol() -> type[asyncio.Protocol] | None:
    """The httptools protocol of uvicorn with the same bounds; None without httptools.

    Made on first use: ``omnistack-core[serve]`` installs uvicorn without httptools, and its
    module imports httptools.
    """
    if importlib.util.find_spec("httptools") is None:
        return None
    try:
        from uvicorn.protocols.http.httptools_impl import (  # noqa: PLC0415 - see above
            STATUS_LINE,
            HttpToolsProtocol,
        )
    except ImportError:
        return None

    class BoundedHttpToolsProtocol(_Deadlines, HttpToolsProtocol):
        """uvicorn's httptools protocol with the bounds of :class:`BoundedH11Protocol`.

        httptools reports what it parsed through callbacks, not where in a read a request
        began or its header ended, so the bytes of a header are counted by reads: those of
        every read from the one its request began in, as an upper bound. When the request
        began in a read that also held the end of the one before (pipelining), that first
        read is counted but not held against a header still incomplete, so a header is cut
        off for its own bytes only.
        """

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._reading = _BETWEEN_REQUESTS
            self._read_size = 0
            self._read_began_between = True  # the read being parsed began between requests
            self._began_in_read = False  # a request began in the read being parsed
            self._header_bytes = 0  # of the reads the header in progress may be in
            self._first_read_unsure = 0  # of those, bytes that may be the request before's
            self._too_large = False
            self._refusal_waits = False  # for the responses to the requests before it
            self._header_deadline: asyncio.TimerHandle | None = None
            self._body_deadline: asyncio.TimerHandle | None = None
            self._upgraded = False

        def data_received(self, data: bytes) -> None:
            """Parse a read, then start or end the deadlines where the request has got to."""
            if self._refusal_waits:
                return  # the connection ends with the 431; nothing after the header matters
            self._read_size = len(data)
            if self._reading == _IN_HEADER:
                self._header_bytes += self._read_size
            self._read_began_between = self._reading == _BETWEEN_REQUESTS
            self._began_in_read = False
            super().data_received(data)
            if self._upgraded or self._refusal_waits or self.transport.is_closing():
                return
            # Armed here rather than in the callbacks: a request read whole arms neither.
            if self._reading == _IN_HEADER:
                if self._header_bytes - self._first_read_unsure > self.bounds.max_header_bytes:
                    self._refuse_header()
                    return
                self._start_header_deadline()
            elif self._reading == _IN_BODY:
                if self._body_deadline is None:
                    self._body_deadline = self.loop.call_later(
                        self.bounds.body_seconds, self._cut_off
                    )
            elif self._read_began_between and not self._began_in_read:
                # Bytes between requests that begin none (blank lines): a header has begun.
                self._start_header_deadline()

        def on_message_begin(self) -> None:
            """Count the header from this read on; its deadline is its own."""
            super().on_message_begin()
            self._end_header_deadline()
            self._reading = _IN_HEADER
            self._header_bytes = self._read_size
            clean = self._read_began_between and not self._began_in_read
            self._first_read_unsure = 0 if clean else self._read_size
            self._began_in_read = True

        def on_headers_complete(self) -> None:
            """Refuse a header over the bound before the app sees it; else time the body."""
            bound = self.bounds.max_header_bytes
            if self._header_bytes + len(self.headers) > bound and (
                _header_size(self.parser.get_method(), len(self.url), self.headers) > bound
            ):
                self._too_large = True
                raise _HeaderTooLargeError  # uvicorn answers with send_400_response
            self._end_header_deadline()
            self._reading = _IN_BODY
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            """End the body's deadline with the body."""
            self._end_body_deadline()
            self._reading = _BETWEEN_REQUESTS
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            """Stop the deadlines with the connection."""
            self._end_header_deadline()
            self._end_body_deadline()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self) -> None:
            """Hand the connection to the WebSocket protocol, which no HTTP deadline concerns."""
            self._upgraded = True
            self._end_header_deadline()
            self._end_body_deadline()
            super().handle_websocket_upgrade()

        def send_400_response(self, msg: str) -> None:
            """Answer 431 when the header was over the bound, else uvicorn's 400."""
            if self._too_large:
                self._refuse_header()
            else:
                super().send_400_response(msg)

        def on_response_complete(self) -> None:
            """Start the next request, or answer the 431 that waited for this response."""
            super().on_response_complete()
            # A response that closed the connection (Connection: close) leaves nothing to answer.
            if (
                self._refusal_waits
                and self.cycle.response_complete
                and not self.transport.is_closing()
            ):
                self._refuse_header()

        def _refuse_header(self) -> None:
            # httptools parses pipelined requests before the ones ahead are answered: the 431
            # goes after their responses, in order, as h11 (which parses one at a time) sends it.
            if self.cycle is not None and not self.cycle.response_complete:
                self._refusal_waits = True
                self.flow.pause_reading()
                self._end_header_deadline()  # the client has sent its header; it waits now
                return
            self._refusal_waits = False
            body = _header_too_large(self.bounds.max_header_bytes)
            content = [STATUS_LINE[HEADER_TOO_LARGE]]
            for name, value in [*self.server_state.default_headers, *_too_large_headers(body)]:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"\r\n", body])
            self.transport.write(b"".join(content))
            self.transport.close()

    return BoundedHttpToolsProtocol
