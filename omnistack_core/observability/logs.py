"""Logging: one stdlib configuration that uvicorn, SQLAlchemy, arq and the app all share.

Production writes one JSON object per line to stdout, which every platform's log pipeline
(Railway, Render, Fly, Datadog, CloudWatch) parses as it is. Development writes one readable
line per record. Both carry the request id of the request being served.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any, TextIO

from omnistack_core.request_context import current_request_id
from omnistack_core.settings import Settings

ACCESS_LOGGER = "omnistack.access"

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
# uvicorn's ``color_message`` extra is its message again, with terminal colour codes.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName", "color_message"}
)

# Terminal escape sequences (colours, cursor moves): noise, or worse, in a log pipeline.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request it was logged in (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` unless the record already carries one; never drops a record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class LineFormatter(logging.Formatter):
    """A formatter that renders a record from its parts, so the access log can skip the record.

    Subclasses implement :meth:`render`; :meth:`format` feeds it a record's parts.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line (plus a traceback, when it carries one)."""
        exception = None
        if record.exc_info:
            exception = self.formatException(record.exc_info)
        elif record.stack_info:
            exception = self.formatStack(record.stack_info)
        return self.render(
            record.name,
            record.levelname,
            record.created,
            record.getMessage(),
            request_id=getattr(record, "request_id", None),
            extras=_extras(record),
            exception=exception,
        )

    def render(
        self,
        logger: str,
        level: str,
        created: float,
        message: str,
        *,
        request_id: str | None,
        extras: dict[str, Any],
        exception: str | None = None,
    ) -> str:
        """Render one log line from its parts."""
        raise NotImplementedError  # pragma: no cover - abstract

    def render_access(self, created: float, request_id: str | None, access: AccessFields) -> str:
        """Render the access line of one request, as :meth:`render` renders its record."""
        return self.render(
            ACCESS_LOGGER,
            "INFO",
            created,
            access.message(),
            request_id=request_id,
            extras=access.extras(),
        )


@dataclass(slots=True)
class AccessFields:
    """What the access line of one request says: its message and its extra fields.

    Attributes:
        method: The request method.
        route: The matched route's template.
        path: The request path.
        status: The response status.
        duration_ms: Milliseconds from request to the end of the response, rounded to 0.01.
        client: The client's address, when known.
    """

    method: str
    route: str
    path: str
    status: int
    duration_ms: float
    client: str | None

    def message(self) -> str:
        """``GET /items/7 200 1.25ms``."""
        return f"{self.method} {self.path} {self.status} {self.duration_ms:.2f}ms"

    def extras(self) -> dict[str, Any]:
        """The fields, as a record's extras, in the order they are logged."""
        return {
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "client": self.client,
        }


class JsonFormatter(LineFormatter):
    """One JSON object per record: the fields log pipelines index, then the record's extras."""

    def __init__(self, service: str, environment: str) -> None:
        super().__init__()
        self.service = service
        self.environment = environment
        # What every access line holds between its message and its request id, encoded once.
        self._access_middle = (
            f', "logger": "{ACCESS_LOGGER}", "service": {encode_basestring(service)}'
            f', "environment": {encode_basestring(environment)}, "request_id": '
        )

    def render(
        self,
        logger: str,
        level: str,
        created: float,
        message: str,
        *,
        request_id: str | None,
        extras: dict[str, Any],
        exception: str | None = None,
    ) -> str:
        """Render one line of JSON."""
        payload: dict[str, Any] = {
            "timestamp": _iso_utc(created),
            "level": level,
            "message": message,
            "logger": logger,
            "service": self.service,
            "environment": self.environment,
            "request_id": request_id,
        }
        payload.update(extras)
        if exception is not None:
            payload["exception"] = exception
        line = _encode(payload)
        # JSON escapes ESC as \u001b; a line without one has nothing to strip.
        return line if "\\u001b" not in line else _encode(_without_ansi(payload))

    def render_access(self, created: float, request_id: str | None, access: AccessFields) -> str:
        """The line :meth:`render` gives, written out directly: one per request adds up.

        Keys, separators and encodings are those of ``json``'s encoder (strings escaped as
        ``ensure_ascii=False`` does, numbers as their ``repr``), so the two are identical.
        """
        string = encode_basestring
        client = access.client
        line = (
            f'{{"timestamp": "{_iso_utc(created)}", "level": "INFO", '
            f'"message": {string(access.message())}{self._access_middle}'
            f"{'null' if request_id is None else string(request_id)}, "
            f'"method": {string(access.method)}, "route": {string(access.route)}, '
            f'"path": {string(access.path)}, "status": {int(access.status)!r}, '
            f'"duration_ms": {float(access.duration_ms)!r}, '
            f'"client": {"null" if client is None else string(client)}}}'
        )
        if "\\u001b" in line:
            return super().render_access(created, request_id, access)
        return line


class TextFormatter(LineFormatter):
    """One readable line per record; CR and LF are escaped so a record never spans lines."""

    def render(
        self,
        logger: str,
        level: str,
        created: float,
        message: str,
        *,
        request_id: str | None,
        extras: dict[str, Any],
        exception: str | None = None,
    ) -> str:
        """Render ``time level logger [request id] message key=value...``."""
        clock = datetime.fromtimestamp(created).strftime("%H:%M:%S.%f")[:-3]  # noqa: DTZ006 - local time reads best at a terminal
        parts = [clock, f"{level:<7}", logger]
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(message)
        if logger != ACCESS_LOGGER:  # the access line's message already says what its extras do
            parts += [f"{key}={value}" for key, value in extras.items()]
        line = " ".join(parts).replace("\r", "\\r").replace("\n", "\\n")
        # A traceback is the one thing allowed several lines.
        return line if exception is None else f"{line}\n{exception}"


class ServiceHandler(logging.StreamHandler[TextIO]):
    """The handler configure_logging installs on the root logger, one line per record."""

    def __init__(self, stream: TextIO, formatter: LineFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.line_formatter = formatter
        self.addFilter(RequestIdFilter())

    def write_access(self, request_id: str | None, access: AccessFields) -> None:
        """Write a request's access line without a LogRecord, exactly as :meth:`emit` would."""
        line = self.line_formatter.render_access(time.time(), request_id, access)
        with self.lock:  # type: ignore[union-attr] # created by Handler.__init__
            self.stream.write(line + self.terminator)
            self.stream.flush()


def sole_handler_of(logger: logging.Logger) -> ServiceHandler | None:
    """The service handler, when it is the only place ``logger``'s INFO records would go.

    Then a line can be written straight to it (:meth:`ServiceHandler.write_access`) with the
    same result as logging it, for a third of the cost. Any other handler or filter on the way
    (pytest's caplog, a user's shipper) means None: log the record the ordinary way.
    """
    root = logging.root
    if logger.handlers or logger.filters or not logger.propagate or len(root.handlers) != 1:
        return None
    handler = root.handlers[0]
    if type(handler) is not ServiceHandler or root.filters or handler.level > logging.INFO:
        return None
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every logger's records through one handler on the root logger.

    Idempotent: calling it again replaces the handler it installed and leaves handlers others
    added (pytest's, Sentry's) in place. uvicorn's and gunicorn's loggers are routed to the root
    handler, and uvicorn's access log is turned off: the observability middleware writes one
    access line per request instead.

    Args:
        settings: ``LOG_LEVEL``, ``LOG_FORMAT``, ``SERVICE_NAME``, ``ENVIRONMENT`` and
            ``DB_ECHO`` are read.
        stream: Where lines go; standard output by default.
    """
    formatter: LineFormatter = (
        JsonFormatter(settings.service_name, settings.environment)
        if settings.logs_as_json
        else TextFormatter()
    )
    handler = ServiceHandler(stream or sys.stdout, formatter)

    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, ServiceHandler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)

    for name in ("uvicorn", "uvicorn.error", "gunicorn", "gunicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    for name in ("uvicorn.access", "gunicorn.access"):
        access = logging.getLogger(name)
        access.handlers.clear()
        access.propagate = False
        access.disabled = True
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if settings.db_echo else logging.WARNING
    )
    # Alembic names every autogenerate plugin it sets up, at INFO, on each command.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Provider SDKs and their HTTP client log every outgoing request at INFO: two lines per
    # Stripe call drown the service's own. They speak up at DEBUG, or when something fails.
    for name in ("httpx", "httpcore", "httpx2", "httpcore2", "stripe", "openai", "anthropic"):
        logging.getLogger(name).setLevel(
            logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
        )


# Built once: json.dumps with options builds a new encoder on every call.
_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _without_ansi(value: Any) -> Any:
    if isinstance(value, str):
        return _ANSI_ESCAPE.sub("", value)
    if isinstance(value, dict):
        return {key: _without_ansi(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_ansi(item) for item in value]
    return _ANSI_ESCAPE.sub("", str(value)) if "\x1b" in str(value) else value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and key[0] != "_"
    }


_second_cache: tuple[int, str] = (-1, "")
# ".000Z" to ".999Z": picking one beats formatting the milliseconds on every line.
_MILLISECONDS = tuple(f".{millisecond:03d}Z" for millisecond in range(1000))


def _iso_utc(created: float) -> str:
    # Formatting the date is most of a timestamp's cost, and consecutive lines share the second.
    global _second_cache  # noqa: PLW0603 - a one-entry cache; a race only recomputes it
    second = int(created)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    # created - second is below 1, so the index is at most 999.
    return prefix + _MILLISECONDS[int((created - second) * 1000)]
