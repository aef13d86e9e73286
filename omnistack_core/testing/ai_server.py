"""What the local OpenAI and Anthropic servers share: serving, scripting, streaming, tokens.

:class:`LocalAIServer` answers one endpoint (``POST /v1/chat/completions``,
``POST /v1/messages``) on a free port of 127.0.0.1 with answers scripted in advance; the
provider's subclass (:class:`~omnistack_core.testing.LocalOpenAI`,
:class:`~omnistack_core.testing.LocalAnthropic`) says how requests are checked and how
answers, errors and stream events look on its wire.

* Answers are queued FIFO (:meth:`~LocalAIServer.reply`, :meth:`~LocalAIServer.fail`) and
  taken by the next request to the endpoint that passes authentication and validation: a
  request refused for its key or its body consumes nothing. With nothing queued the answer
  is ``"Hello from <model>."``.
* A reply is streamed when the request asks (``"stream": true``): its text in deltas of
  ``chunk_size`` characters, its tool calls' JSON arguments likewise, over chunked HTTP/1.1.
* Tokens are counted the same simple way for both providers (:meth:`~LocalAIServer.count_tokens`):
  every word and every punctuation mark is one token. The prompt's tokens are those of the
  strings in ``system`` and ``messages`` (names of roles, types and ids, image data and URLs
  left out); the completion's are those of the answer's text, its tool names and their JSON
  arguments. A text longer than the request's ``max_tokens`` is cut there, and the answer
  finishes as the provider says when it runs out (``length``, ``max_tokens``).
* A client that goes away before its answer is fully written (a timeout, a stream closed
  early) is noticed at once, even while the server waits out a ``delay`` or ``chunk_delay``;
  it is counted in :attr:`~LocalAIServer.disconnects`, nothing is printed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import select
import socket
import string
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from omnistack_core.testing.local_server import CLIENT_GONE, LocalServer

_TOKEN = re.compile(r"\w+|[^\w\s]")
ALPHANUMERIC = string.ascii_letters + string.digits
# Strings under these keys name things (roles, block types, ids) or carry data (images,
# files) rather than text a tokenizer would see.
_NOT_TEXT = frozenset(
    {"role", "type", "id", "tool_call_id", "tool_use_id", "url", "data", "media_type", "detail"}
)
_MAX_BODY_BYTES = 32 * 1024 * 1024
_POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class ToolCallScript:
    """A tool call a scripted answer makes.

    Attributes:
        name: The function (tool) name.
        arguments: Its arguments, sent as JSON.
        id: The call's id; ``call_…`` (OpenAI) or ``toolu_…`` (Anthropic) when None.
    """

    name: str
    arguments: Mapping[str, Any]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class AIRequest:
    """A request the server received.

    Attributes:
        method: ``POST``, ``GET``...
        path: The path, without the query.
        headers: Its headers, names in lower case.
        body: Its JSON body; ``{}`` when it had none or it was not a JSON object.
        streamed: Whether it asked for a stream (``"stream": true``).
        status: The status answered (200 for a stream, even one that broke later).
        raw: The body as sent.
        received_at: When it arrived, on :func:`time.monotonic`'s clock.
    """

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: dict[str, Any]
    streamed: bool
    status: int = 200
    raw: bytes = field(default=b"", repr=False)
    received_at: float = field(default=0.0, repr=False)


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str | None
    tool_calls: tuple[ToolCallScript, ...]
    finish: str | None
    usage: Mapping[str, int]
    chunk_size: int
    delay: float
    chunk_delay: float


@dataclass(frozen=True, slots=True)
class Failure:
    """An error answer :meth:`LocalAIServer.fail` queued; None leaves it to the provider.

    ``retry_after`` is already 1 for a 429 that named none.
    """

    status: int
    message: str | None
    type: str | None
    code: str | None
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class _Break:
    after_chunks: int
    abrupt: bool


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call as answered: its id resolved, its arguments as JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One reply, resolved against the request it answers.

    Attributes:
        id: The completion's (message's) id.
        model: The request's model.
        text: The text, cut at ``max_tokens`` when it ran over.
        tool_calls: The tool calls, in order.
        finish: The scripted finish reason; None for the provider's natural one.
        truncated: Whether the text was cut at ``max_tokens``.
        counts: The prompt's and the answer's tokens under the provider's names (see
            :attr:`LocalAIServer.token_names`), and the scripted counts over them.
        chunk_size: Characters per streamed delta.
        delay: Seconds before the first byte.
        chunk_delay: Seconds between stream events.
        created: Unix seconds.
    """

    id: str
    model: str
    text: str
    tool_calls: tuple[ToolCall, ...]
    finish: str | None
    truncated: bool
    counts: Mapping[str, int]
    chunk_size: int
    delay: float
    chunk_delay: float
    created: int

    def reason(self, *, natural: str, tools: str, cut: str) -> str:
        """The scripted finish reason, else the provider's word for how the answer ended."""
        if self.finish is not None:
            return self.finish
        if self.tool_calls:
            return tools
        return cut if self.truncated else natural

    def pieces(self, text: str) -> list[str]:
        """``text`` split into stream deltas of :attr:`chunk_size` characters."""
        size = self.chunk_size
        return [text[start : start + size] for start in range(0, len(text), size)]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event of a streamed answer.

    ``kind`` places it for :meth:`LocalAIServer.fail_mid_stream`: ``lead`` events (the
    stream's opening) always go out, ``delta`` events carry the text or the arguments and
    are the chunks counted, ``other`` events (block boundaries, the finish) come after them.
    """

    data: bytes
    kind: Literal["lead", "delta", "other"] = "delta"


class APIRefusal(Exception):  # noqa: N818 - an answer the handler sends, not a failure of ours
    """An error answer: a status, the provider's JSON error body and extra headers."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class _ClientGone(Exception):  # noqa: N818 - control flow inside the handler, not an error
    pass


class _Stopping(Exception):  # noqa: N818 - same
    pass


class LocalAIServer(LocalServer, ABC):
    """The serving and scripting both local AI servers share; see the module docstring.

    Args:
        api_key: The key requests must carry; a random one with the provider's prefix when
            None.

    Attributes:
        api_key: The key requests must carry.
        requests: Every request received, oldest first.
        disconnects: Answers whose client went away before the server finished writing them
            (a stream closed early, a request that timed out).
    """

    key_prefix: ClassVar[str]
    """The prefix of a generated key."""
    endpoint: ClassVar[str]
    """The path answers are scripted for."""
    usage_keys: ClassVar[frozenset[str]]
    """The counts :meth:`reply`'s ``usage`` may set."""
    token_names: ClassVar[tuple[str, str]]
    """The provider's names for the prompt's and the answer's tokens."""
    max_tokens_fields: ClassVar[tuple[str, ...]]
    """The request fields that limit the answer's tokens, the first given wins."""
    id_formats: ClassVar[Mapping[str, tuple[str, int, str]]]
    """Per kind of id (``answer``, ``tool_call``, ``request``): prefix, length, alphabet."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key or self.key_prefix + secrets.token_urlsafe(24)
        self.requests: list[AIRequest] = []
        self.disconnects = 0
        self._queue: deque[_Reply | Failure] = deque()
        self._breaks: deque[_Break] = deque()
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._stopping = threading.Event()

    # Serving --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving on a free port of 127.0.0.1."""
        self._stopping.clear()
        super().start()

    def stop(self) -> None:
        """Stop serving: answers being written end, new requests fail to connect."""
        self._stopping.set()
        super().stop()

    # Scripting ------------------------------------------------------------------------------

    def reply(
        self,
        text: str = "",
        *,
        tool_calls: Sequence[ToolCallScript] = (),
        finish: str | None = None,
        usage: Mapping[str, int] | None = None,
        chunk_size: int = 4,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> None:
        """Queue one answer.

        Args:
            text: What the model says; with ``response_format`` (OpenAI) or an output format
                (Anthropic), the JSON it returns.
            tool_calls: The tools it calls, after the text.
            finish: The finish (stop) reason; the provider's natural one when None.
            usage: Token counts to answer instead of the computed ones, in the provider's
                names (see :attr:`usage_keys`).
            chunk_size: Characters per streamed delta.
            delay: Seconds before the first byte of the answer (to make a client time out).
            chunk_delay: Seconds between stream events (to close a stream mid-way).

        Raises:
            ValueError: A usage name the provider does not answer, or a size or delay out of
                range.
        """
        unknown = sorted(set(usage or {}) - self.usage_keys)
        if unknown:
            allowed = ", ".join(sorted(self.usage_keys))
            raise ValueError(f"unknown usage {', '.join(unknown)}; use {allowed}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if delay < 0 or chunk_delay < 0:
            raise ValueError("delays cannot be negative")
        script = _Reply(
            text, tuple(tool_calls), finish, dict(usage or {}), chunk_size, delay, chunk_delay
        )
        with self._lock:
            self._queue.append(script)

    def fail(
        self,
        status: int,
        *,
        message: str | None = None,
        type: str | None = None,  # noqa: A002 - the providers' own field name
        code: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Queue ``times`` error answers in the provider's shape.

        Args:
            status: The HTTP status, 400-599.
            message: The error message; the provider's usual one for the status when None.
            type: The error type; the provider's for the status when None.
            code: The error code (OpenAI's ``code``; Anthropic's ``details.error_code``).
            retry_after: Seconds sent as ``retry-after``; 1 for a 429 when None.
            times: How many requests get it.
        """
        if not 400 <= status <= 599:
            raise ValueError("status must be an error status, 400-599")
        if times < 1:
            raise ValueError("times must be at least 1")
        if status == 429 and retry_after is None:
            retry_after = 1
        failure = Failure(status, message, type, code, retry_after)
        with self._lock:
            self._queue.extend(failure for _ in range(times))

    def fail_mid_stream(self, after_chunks: int, *, abrupt: bool = False) -> None:
        """Break the next streamed answer after ``after_chunks`` deltas.

        Args:
            after_chunks: Text or argument deltas sent before it breaks.
            abrupt: Close the connection without a word, instead of sending the provider's
                error event.
        """
        if after_chunks < 0:
            raise ValueError("after_chunks cannot be negative")
        with self._lock:
            self._breaks.append(_Break(after_chunks, abrupt))

    @property
    def queued(self) -> int:
        """Answers queued and not yet taken."""
        with self._lock:
            return len(self._queue)

    def wait_for_disconnect(self, timeout: float = 5.0, *, count: int = 1) -> bool:
        """Wait until ``count`` disconnects were seen in all; whether they were in time."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self.disconnects >= count, timeout)

    @staticmethod
    def count_tokens(text: str) -> int:
        """The tokens in ``text`` as this server counts them: words and punctuation marks."""
        return len(_TOKEN.findall(text))

    # The provider's wire --------------------------------------------------------------------

    @abstractmethod
    def _authenticate(self, headers: Mapping[str, str]) -> None:
        """Raise :class:`APIRefusal` unless the headers carry the key the provider wants."""

    @abstractmethod
    def _validate(self, body: dict[str, Any]) -> None:
        """Raise :class:`APIRefusal` for a body the provider would refuse."""

    @abstractmethod
    def _invalid_json(self) -> APIRefusal:
        """The refusal of a body that is not a JSON object."""

    @abstractmethod
    def _not_found(self, method: str, path: str) -> APIRefusal:
        """The refusal of a request to any other route."""

    @abstractmethod
    def _failure(self, failure: Failure, body: dict[str, Any]) -> APIRefusal:
        """The refusal :meth:`fail` queued, for ``body``; ``retry-after`` is added to it."""

    @abstractmethod
    def _response_headers(self, request_id: str, received_at: float) -> dict[str, str]:
        """Headers every answer carries."""

    @abstractmethod
    def _completion(self, answer: Answer, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON answer to a request that did not ask for a stream."""

    @abstractmethod
    def _stream(self, answer: Answer, body: dict[str, Any]) -> Iterator[StreamEvent]:
        """The events of a streamed answer, to the last."""

    def _error_body(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        """An error body as sent; the provider may add the request's id."""
        del request_id  # not every provider repeats it in the body
        return body

    @abstractmethod
    def _stream_error(self, request_id: str) -> bytes:
        """The event that breaks a stream (:meth:`fail_mid_stream`)."""

    # Handling -------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        received_at = time.monotonic()
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        too_large = length > _MAX_BODY_BYTES
        raw = handler.rfile.read(length) if length > 0 and not too_large else b""
        if too_large:
            handler.close_connection = True  # its body is left unread
        path = urlsplit(handler.path).path
        parsed = _json_object(raw)
        body = parsed or {}
        streamed = body.get("stream") is True
        request_id = self._new_id("request")
        sent = self._response_headers(request_id, received_at)
        request = AIRequest(handler.command, path, headers, body, streamed, 200, raw, received_at)
        try:
            try:
                if too_large:
                    raise self._failure(Failure(413, None, None, None, None), body)
                answer, broken = self._take(handler.command, path, headers, parsed)
            except APIRefusal as refusal:
                self._record(dataclasses.replace(request, status=refusal.status))
                error = self._error_body(refusal.body, request_id)
                _send_json(handler, refusal.status, error, {**sent, **refusal.headers})
                return
            self._record(request)
            self._pause(handler, answer.delay)
            if streamed:
                self._send_stream(
                    handler, answer, body, broken=broken, request_id=request_id, headers=sent
                )
            else:
                _send_json(handler, 200, self._completion(answer, body), sent)
        except _ClientGone:
            handler.close_connection = True
            with self._disconnected:
                self.disconnects += 1
                self._disconnected.notify_all()
        except _Stopping:
            handler.close_connection = True

    def _take(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None,
    ) -> tuple[Answer, _Break | None]:
        if method != "POST" or path != self.endpoint:
            raise self._not_found(method, path)
        self._authenticate(headers)
        if body is None:
            raise self._invalid_json()
        self._validate(body)
        with self._lock:
            script = self._queue.popleft() if self._queue else None
            broken = None
            if not isinstance(script, Failure) and body.get("stream") is True and self._breaks:
                broken = self._breaks.popleft()
        if isinstance(script, Failure):
            refusal = self._failure(script, body)
            if script.retry_after is not None:
                refusal.headers["retry-after"] = seconds_header(script.retry_after)
            raise refusal
        return self._resolve(script or _Reply(None, (), None, {}, 4, 0.0, 0.0), body), broken

    def _resolve(self, reply: _Reply, body: dict[str, Any]) -> Answer:
        model = str(body.get("model"))
        text = f"Hello from {model}." if reply.text is None else reply.text
        calls = tuple(
            ToolCall(
                call.id or self._new_id("tool_call"),
                call.name,
                json.dumps(call.arguments, separators=(",", ":")),
            )
            for call in reply.tool_calls
        )
        limits = [body[name] for name in self.max_tokens_fields if name in body]
        limit = limits[0] if limits and isinstance(limits[0], int) else None
        tokens = list(_TOKEN.finditer(text))
        truncated = reply.finish is None and not calls and limit is not None and len(tokens) > limit
        if truncated and limit is not None:
            text = text[: tokens[limit - 1].end()] if limit > 0 else ""
        output = self.count_tokens(text) + sum(
            self.count_tokens(call.name) + self.count_tokens(call.arguments) for call in calls
        )
        prompt = [body.get("system"), body.get("messages")]
        input_name, output_name = self.token_names
        counts = {
            input_name: sum(self.count_tokens(piece) for piece in _strings(prompt)),
            output_name: output,
            **reply.usage,
        }
        return Answer(
            id=self._new_id("answer"),
            model=model,
            text=text,
            tool_calls=calls,
            finish=reply.finish,
            truncated=truncated,
            counts=counts,
            chunk_size=reply.chunk_size,
            delay=reply.delay,
            chunk_delay=reply.chunk_delay,
            created=int(time.time()),
        )

    def _send_stream(
        self,
        handler: BaseHTTPRequestHandler,
        answer: Answer,
        body: dict[str, Any],
        *,
        broken: _Break | None,
        request_id: str,
        headers: Mapping[str, str],
    ) -> None:
        _send_head(handler, 200, "text/event-stream; charset=utf-8", headers)
        deltas = 0
        for number, event in enumerate(self._stream(answer, body)):
            if number and answer.chunk_delay:
                self._pause(handler, answer.chunk_delay)
            if broken is not None and event.kind != "lead" and deltas >= broken.after_chunks:
                if broken.abrupt:
                    # No error event and no last chunk: the client reads a body cut short.
                    handler.close_connection = True
                    return
                _write(handler, _chunk(self._stream_error(request_id)))
                break
            _write(handler, _chunk(event.data))
            deltas += event.kind == "delta"
        _write(handler, b"0\r\n\r\n")

    def _pause(self, handler: BaseHTTPRequestHandler, seconds: float) -> None:
        """Wait, noticing at once a client that goes away or the server stopping."""
        deadline = time.monotonic() + seconds
        connection = handler.connection
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping.is_set():
                raise _Stopping
            readable, _, _ = select.select([connection], [], [], min(left, _POLL_SECONDS))
            if readable:
                try:
                    gone = connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone:
                    raise _ClientGone
                # A pipelined request waits its turn; nothing to watch until then.
                time.sleep(max(deadline - time.monotonic(), 0))
                return

    def _new_id(self, kind: Literal["answer", "tool_call", "request"]) -> str:
        prefix, length, alphabet = self.id_formats[kind]
        return prefix + random_string(length, alphabet)

    def _record(self, request: AIRequest) -> None:
        with self._lock:
            self.requests.append(request)


def seconds_header(seconds: float) -> str:
    """Seconds as a ``retry-after`` value: whole seconds as an integer, else a decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def random_string(length: int, alphabet: str = ALPHANUMERIC) -> str:
    """``length`` random characters of ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def sse(data: Mapping[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event: ``event: …`` when named, then ``data: …`` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    named = f"event: {event}\n" if event is not None else ""
    return f"{named}data: {payload}\n\n".encode()


def message_text(messages: object) -> str:
    """The strings of ``messages`` as a tokenizer sees them, joined by spaces."""
    return " ".join(_strings(messages))


def _strings(value: object, key: str | None = None) -> Iterator[str]:
    if isinstance(value, str):
        if key not in _NOT_TEXT:
            yield value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _strings(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _send_head(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    headers: Mapping[str, str],
    length: int | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    if length is None:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(length))
    for name, value in headers.items():
        handler.send_header(name, value)
    try:
        handler.end_headers()
    except CLIENT_GONE as exc:
        raise _ClientGone from exc


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    _send_head(handler, status, "application/json", headers, len(payload))
    _write(handler, payload)


def _write(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    try:
        handler.wfile.write(data)
    except CLIENT_GONE as exc:
        raise _ClientGone from exc
