"""What the local fakes of provider APIs share: an HTTP server on 127.0.0.1 in a thread.

A fake subclasses :class:`LocalServer` and answers every request in ``_handle``; the base
starts and stops the server and gives its URL.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
"""What writing to a client that closed its connection raises."""


class LocalServer(ABC):
    """A fake provider API served on a free port of 127.0.0.1 from a daemon thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    base_path: ClassVar[str] = ""
    """Appended to the server's address in :attr:`url` (``/v1`` for OpenAI's SDK)."""

    _server: _Server | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving on a free port of 127.0.0.1."""
        self._server = _Server(self)
        # A short poll interval: stop() waits for the serving loop to notice.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def stop(self) -> None:
        """Stop serving: open connections are cut and new ones refused, as a provider gone."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.cut_connections()
            self._server = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` and the base path: what the SDK is pointed at."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.base_path}"

    @abstractmethod
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request (``handler.command`` is its method)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() returns at once; an answer still being written ends at its next pause.
    block_on_close = False

    def __init__(self, owner: LocalServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        """Close the kept-alive connections that would otherwise still be answered."""
        with self._connections_lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body (or each stream event) are separate writes; with Nagle's algorithm
    # each would wait for the client's delayed ACK, 40 ms apiece.
    disable_nagle_algorithm = True
    server: _Server

    def _answer(self) -> None:
        self.server.owner._handle(self)  # noqa: SLF001 - the handler is the server's own

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815 - http.server's names

    def handle(self) -> None:
        try:
            super().handle()
        except CLIENT_GONE:
            # A client that closed its connection between requests: nothing to answer.
            self.close_connection = True

    def log_message(self, *_: object) -> None:
        return  # tests read what the fakes recorded, not access logs
