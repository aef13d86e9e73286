"""The OmniStack exception tree and the problem+json (RFC 9457) error responses.

Every error OmniStack raises derives from one root, so callers can catch the whole library
with one ``except``; vendor errors are translated at the boundary with ``raise ... from``::

    OmniStackError
     ├── ConfigurationError       settings that cannot start the service (every problem at once)
     ├── MissingDependencyError   an optional extra is not installed (also an ImportError)
     ├── ModuleNotRunningError    a module's resource is used where it is not installed or
     │                            not started (also a RuntimeError)
     ├── UnmetRequirementError    a required variable is unset (a ValueError, raised inside
     │                            settings validation and reported in a ConfigurationError)
     └── ProblemError             an error meant for the client, rendered as problem+json
                                  (also Starlette's HTTPException, for apps with their own
                                  error handlers)

Errors reach HTTP clients as ``application/problem+json`` bodies: ``type``, ``title``,
``status``, ``detail``, ``instance`` and extension members. Unhandled exceptions become a
generic 500 whose body never carries a traceback or an exception message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omnistack_core.request_context import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"


class OmniStackError(Exception):
    """Root of every exception raised by omnistack_core."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One reason the configuration cannot start the service.

    Attributes:
        variable: The environment variable at fault, e.g. ``SECRET_KEY``.
        message: What is expected; never the variable's value.
    """

    variable: str
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


class ConfigurationError(OmniStackError):
    """The settings cannot start the service; ``problems`` lists every reason at once.

    Attributes:
        problems: Every problem found.
        modules: The modules being installed when it was raised (``create_app`` and
            ``install`` fill it in), so tools can still describe their variables.
    """

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        self.modules: tuple[Any, ...] = ()
        count = len(self.problems)
        lines = [f"Invalid configuration ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class MissingDependencyError(OmniStackError, ImportError):
    """An optional module is used without its extra installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"omnistack_core.{module} needs the '{extra}' extra: "
            f"pip install 'omnistack-core[{extra}]'"
        )
        self.extra = extra


class ModuleNotRunningError(OmniStackError, RuntimeError):
    """A module's resource was asked for in an app that does not run the module."""


class ProblemError(OmniStackError, HTTPException):
    """An error for the client, rendered as an RFC 9457 problem+json response.

    It is also a Starlette ``HTTPException``: in an app without OmniStack's handlers
    (:func:`install_problem_handlers`), the app's own HTTP error handling renders it with
    its status and headers.

    Args:
        status: The HTTP status code.
        detail: A human-readable explanation specific to this occurrence.
        title: A short summary of the problem type; defaults to the status phrase.
        type: A URI identifying the problem type; ``about:blank`` when it is just the status.
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After``...).
        extensions: Extra members merged into the body.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",  # noqa: A002 - the RFC's member name
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.title = title or _status_phrase(status)
        HTTPException.__init__(self, status, headers=dict(headers or {}))
        self.status = status
        # None, not the status phrase Starlette would fill in: the body then has no detail.
        self.detail = detail  # type: ignore[assignment]
        self.headers: dict[str, str] = dict(headers or {})
        self.type = type
        self.extensions = dict(extensions or {})

    def __str__(self) -> str:
        return self.detail or self.title

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, detail={self.detail!r})"


class ProblemResponse(JSONResponse):
    """A JSON response served as ``application/problem+json``."""

    media_type = PROBLEM_MEDIA_TYPE


def problem_response(request_path: str, problem: ProblemError) -> Response:
    """Render ``problem`` as an ``application/problem+json`` response.

    Args:
        request_path: The path of the request, reported as ``instance``.
        problem: The problem to render.

    Returns:
        The response; 204 and 304 get no body, as HTTP requires.
    """
    if problem.status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
        return Response(status_code=problem.status, headers=problem.headers)
    # Extensions first, so they can never override the standard members.
    body: dict[str, Any] = dict(problem.extensions)
    body.update(type=problem.type, title=problem.title, status=problem.status)
    if problem.detail is not None:
        body["detail"] = problem.detail
    body["instance"] = request_path
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    return ProblemResponse(body, status_code=problem.status, headers=problem.headers)


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _handle_problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)  # noqa: S101 - Starlette dispatches by type
    return problem_response(request.url.path, exc)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - Starlette dispatches by type
    detail: str | None = None
    extensions: dict[str, Any] = {}
    if isinstance(exc.detail, str):
        # Starlette fills a bare HTTPException's detail with the status phrase: not worth repeating.
        detail = None if exc.detail == _status_phrase(exc.status_code) else exc.detail
    elif exc.detail is not None:
        extensions["errors"] = exc.detail
    problem = ProblemError(exc.status_code, detail, headers=exc.headers, extensions=extensions)
    return problem_response(request.url.path, problem)


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - Starlette dispatches by type
    # The offending input is left out on purpose: it can be large, and it can be a secret.
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    # HTTPStatus names 422 UNPROCESSABLE_CONTENT only from Python 3.13.
    problem = ProblemError(422, "The request is not valid.", extensions={"errors": errors})
    return problem_response(request.url.path, problem)


def install_problem_handlers(app: FastAPI) -> None:
    """Render the errors handlers catch (HTTP, validation, :class:`ProblemError`) as problem+json.

    Exceptions nothing catches are answered by the observability middleware, which logs them
    with the request id and sends a generic problem+json 500.

    Args:
        app: The application to configure.
    """
    app.add_exception_handler(ProblemError, _handle_problem_error)
    app.add_exception_handler(HTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
