"""Request id, access log, HTTP metrics and the last-resort 500, in one pure-ASGI layer.

One layer rather than four: every request pays for one wrapped ``send`` and one clock read
at each end, instead of a wrapper, a context switch and a clock per concern.
"""

from __future__ import annotations

import logging
import re
from time import perf_counter
from typing import TYPE_CHECKING, Any

from fastapi.routing import iter_route_contexts
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnistack_core.errors import ProblemError, problem_response
from omnistack_core.observability.logs import ACCESS_LOGGER, AccessFields, sole_handler_of
from omnistack_core.request_context import accepted_request_id, request_id_var

if TYPE_CHECKING:
    from omnistack_core.observability.metrics import HttpMetrics

CLIENT_CLOSED_REQUEST = 499
"""The status a request's metrics and access line record when its client left before it."""

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
UNMATCHED_ROUTE = "<unmatched>"
"""The route of every request no route matched: scanners add no log fields or series."""

access_log = logging.getLogger(ACCESS_LOGGER)
error_log = logging.getLogger("omnistack.errors")


class ObservabilityMiddleware:
    """Give each HTTP request an id, time it, count it and write its access-log line.

    An exception nothing else caught is logged once, with its traceback and the request id,
    and answered with a generic problem+json 500 (no message, no traceback); the server does
    not see it, so it is not logged twice. If the response had already started, the exception
    is raised on for the server to drop the connection.

    The id is the incoming ``X-Request-ID`` when well-formed, a fresh one otherwise; it is
    set in :data:`~omnistack_core.request_context.request_id_var` while the request is served
    and returned in the response's ``X-Request-ID``. The route in logs and metrics is the
    matched route's template (``/items/{item_id}``), never the raw path.

    Args:
        app: The ASGI app to wrap.
        metrics: Where to record HTTP metrics; None when metrics are off.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope["headers"]:
            if key == _REQUEST_ID_KEY:
                incoming = value.decode("latin-1")
                break
        request_id = accepted_request_id(incoming)
        id_header = (_REQUEST_ID_KEY, request_id.encode("latin-1"))
        status = 500  # what the client gets if the app fails before it answers

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        method = scope["method"]
        metrics = self.metrics
        method_label = metrics.started(method) if metrics is not None else method
        token = request_id_var.set(request_id)
        started = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client left mid-body, or the server cut a slow one off: there is nobody to
            # answer, and no server error to count (nginx's 499: client closed request).
            status = CLIENT_CLOSED_REQUEST
        except Exception:
            error_log.exception("Unhandled error in %s %s", method, scope["path"])
            if response_started:
                raise
            problem = ProblemError(500, "An unexpected error occurred.")
            await problem_response(scope["path"], problem)(scope, receive, send_with_id)
        finally:
            seconds = perf_counter() - started
            route = self.templates.template(scope)
            if metrics is not None:
                metrics.finished(method_label, route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(
                    scope, request_id, method=method, route=route, status=status, seconds=seconds
                )
            request_id_var.reset(token)


class RouteTemplates:
    """The full template of the route a request matched, prefixes included.

    FastAPI leaves the router's own route in ``scope["route"]``, whose path lacks the prefixes
    it was included under (``/items/{item_id}``, not ``/api/v1/items/{item_id}``). The full
    templates come from the app's route table, read again whenever a route is not yet known,
    since apps add routers after they are built.
    """

    def __init__(self) -> None:
        self._by_route: dict[int, list[tuple[re.Pattern[str] | None, str]]] = {}

    def template(self, scope: Scope) -> str:
        """The matched route's template, or :data:`UNMATCHED_ROUTE`."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED_ROUTE
        candidates = self._by_route.get(id(route))
        if candidates is None:
            self._read_routes(scope["app"])
            candidates = self._by_route.setdefault(id(route), [(None, route.path)])
        if len(candidates) == 1:
            return candidates[0][1]
        # The same router included under several prefixes: the path tells which.
        for pattern, template in candidates:
            if pattern is not None and pattern.match(scope["path"]):
                return template
        return candidates[0][1]

    def _read_routes(self, app: Any) -> None:
        table: dict[int, list[tuple[re.Pattern[str] | None, str]]] = {}
        for context in iter_route_contexts(app.router.routes):
            if context.path_format is not None:
                pattern = getattr(context, "path_regex", None)
                table.setdefault(id(context.original_route), []).append(
                    (pattern, context.path_format)
                )
        self._by_route = table


def _log_access(
    scope: Scope, request_id: str, *, method: str, route: str, status: int, seconds: float
) -> None:
    client = scope.get("client")
    access = AccessFields(
        method=method,
        route=route,
        path=scope["path"],
        status=status,
        duration_ms=round(seconds * 1000, 2),
        client=client[0] if client else None,
    )
    handler = sole_handler_of(access_log)
    if handler is not None:
        # The common case, one line to stdout: the same line, without a LogRecord's cost.
        handler.write_access(request_id, access)
        return
    record = access_log.makeRecord(
        ACCESS_LOGGER, logging.INFO, __file__, 0, access.message(), (), None, extra=access.extras()
    )
    record.request_id = request_id
    access_log.handle(record)
