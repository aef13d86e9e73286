"""The OpenAPI document says what the API answers: problem+json errors, each with its status.

FastAPI documents what a route returns when all goes well, a 422 in a shape OmniStack never
sends (``HTTPValidationError`` as ``application/json``), and nothing of the errors its
dependencies raise. :func:`describe_problems` corrects the document once it is generated:

- a ``Problem`` schema (RFC 9457 members, the request id and the ``errors`` of a 422) is
  added to the components, and every error response of an operation is declared as
  ``application/problem+json`` with it;
- every operation declares 500; those that take a body declare 400 (a body that cannot be
  parsed) and 413;
- a dependency marked with :func:`declare_problems` adds its statuses to every operation
  that uses it, however deep (the auth dependencies add 401 and 403, a rate limiter 429);
- routes declare their own (404, 409) with FastAPI's ``responses=``, in any form:
  ``responses=problem_responses(404)`` or ``{404: {"description": "No such item"}}``.

:func:`~omnistack_core.create_app` calls it; an app that adds modules with
:func:`~omnistack_core.install` calls it next to
:func:`~omnistack_core.errors.install_problem_handlers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from omnistack_core.errors import PROBLEM_MEDIA_TYPE

__all__ = [
    "PROBLEM_SCHEMA",
    "declare_problems",
    "describe_problems",
    "problem_responses",
    "webhook_operation",
]

DependencyT = TypeVar("DependencyT")

PROBLEM_SCHEMA = "Problem"
"""The name of the problem+json schema in ``components.schemas``."""

_PROBLEM_REF = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}
_STATUSES_MARK = "__omnistack_problems__"
_SIGN_IN_MARK = "__omnistack_sign_in__"

# Answers any operation can give, whatever its dependencies. (A database that cannot be
# reached is a 500 too; a 503 is declared by the dependencies that give one.)
_EVERY_OPERATION = (500,)
_WITH_A_BODY = (400, 413)

_DESCRIPTIONS = {
    400: "The body cannot be read (not in its declared encoding), or a webhook is not signed.",
    401: "No valid access token: sign in (``Authorization: Bearer <token>``).",
    403: "Signed in, but not allowed.",
    404: "Not found.",
    409: "In conflict with the current state.",
    413: "The body is larger than the service accepts.",
    422: "The request is not valid; ``errors`` says where and why.",
    429: "Too many requests: wait as long as ``Retry-After`` says.",
    500: "An unexpected error; the ``request_id`` finds it in the logs.",
    503: "A service it needs (a provider, Redis) cannot be reached: try again later.",
}

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of OmniStack's problem+json bodies (extension members allowed)."""
    return {
        "title": PROBLEM_SCHEMA,
        "description": "An error, as RFC 9457 problem details.",
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the problem type."},
            "title": {"type": "string", "description": "A short summary of the problem type."},
            "status": {"type": "integer", "description": "The HTTP status code."},
            "detail": {"type": "string", "description": "What went wrong this time."},
            "instance": {"type": "string", "description": "The path of the request."},
            "request_id": {"type": "string", "description": "The request's id, in the logs."},
            "errors": {
                "type": "array",
                "description": "A 422's invalid fields.",
                "items": {
                    "type": "object",
                    "required": ["loc", "message", "type"],
                    "properties": {
                        "loc": {
                            "type": "array",
                            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            "description": "Where: ``body``, ``path``, ``query``... then names.",
                        },
                        "message": {"type": "string"},
                        "type": {"type": "string", "description": "The kind of error."},
                    },
                },
            },
        },
        "additionalProperties": True,
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for problem+json answers: ``responses=problem_responses(404)``."""
    return {status: _problem_response(status) for status in statuses}


def webhook_operation(description: str, headers: Iterable[str]) -> dict[str, Any]:
    """FastAPI ``openapi_extra=`` for a provider's webhook: its JSON body and signature headers.

    The route reads its raw body itself (the signature covers the bytes), so FastAPI cannot
    see the body or the headers to document them.

    Args:
        description: What the body is.
        headers: The headers carrying the signature; missing or wrong ones get a 400.
    """
    return {
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Part of the provider's signature; without it the answer is 400.",
            }
            for name in headers
        ],
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    }


def declare_problems(
    *statuses: int, sign_in: Literal["required", "optional"] | None = None
) -> Callable[[DependencyT], DependencyT]:
    """Mark a dependency: every operation that uses it may answer ``statuses`` as problem+json.

    Use it as a decorator on the dependency (a function, or an instance with ``__call__``)::

        @declare_problems(429)
        async def rate_limited(request: Request) -> None: ...

    Args:
        statuses: The statuses the dependency raises.
        sign_in: For a dependency reading the bearer token: ``optional`` lets the document
            say anonymous callers are served too, unless a ``required`` one is also used.
    """

    def mark(dependency: DependencyT) -> DependencyT:
        declared: frozenset[int] = getattr(dependency, _STATUSES_MARK, frozenset())
        setattr(dependency, _STATUSES_MARK, declared | frozenset(statuses))
        if sign_in is not None:
            setattr(dependency, _SIGN_IN_MARK, sign_in)
        return dependency

    return mark


def describe_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document declare its problem+json answers (see the module doc).

    Args:
        app: The app; its ``openapi()`` is replaced by one that corrects FastAPI's document
            each time FastAPI generates it again.
    """
    generate = app.openapi
    described: list[int] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        # FastAPI regenerates the document when routes are added; correct each new one once.
        if not described or described[-1] != id(schema):
            _describe(schema, app.routes)
            described.append(id(schema))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA] = problem_schema()
    paths = schema.get("paths", {})
    for route in _api_routes(routes):
        if not route.include_in_schema:
            continue
        statuses, sign_in = _dependency_marks(route.dependant)
        for method in route.methods:
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _describe_operation(operation, statuses, sign_in)
    # FastAPI's 422 schemas describe a body OmniStack never sends: gone, unless still used.
    # An app with no parameters or bodies has none of them to begin with.
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        others = {key: value for key, value in schemas.items() if key != name}
        if name in schemas and f"#/components/schemas/{name}" not in set(_refs([paths, others])):
            del schemas[name]


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    # FastAPI keeps included routers whole and gives each of their routes its prefixed path
    # through a route context, as its own OpenAPI generation reads them.
    for context in routing.iter_route_contexts(routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _describe_operation(operation: dict[str, Any], statuses: set[int], sign_in: set[str]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    wanted = set(statuses) | set(_EVERY_OPERATION)
    if "requestBody" in operation:
        wanted |= set(_WITH_A_BODY)
    for status in sorted(wanted):
        responses.setdefault(str(status), _problem_response(status))
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            _as_problem(int(code), response)
    if "optional" in sign_in and "required" not in sign_in and operation.get("security"):
        # An empty requirement: anonymous callers are served too.
        operation["security"] = [*operation["security"], {}]


def _as_problem(status: int, response: dict[str, Any]) -> None:
    content: dict[str, Any] = response.get("content") or {}
    json_schema = content.get("application/json", {}).get("schema", {})
    if not content or json_schema.get("$ref", "").endswith("/HTTPValidationError"):
        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}}
    elif PROBLEM_MEDIA_TYPE in content and not content[PROBLEM_MEDIA_TYPE].get("schema"):
        content[PROBLEM_MEDIA_TYPE]["schema"] = dict(_PROBLEM_REF)
    if status == 422 and response.get("description") == "Validation Error":
        response["description"] = _DESCRIPTIONS[422]


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS.get(status) or _phrase(status),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}},
    }


def _dependency_marks(dependant: Dependant) -> tuple[set[int], set[str]]:
    statuses: set[int] = set()
    sign_in: set[str] = set()
    for call in _calls(dependant):
        statuses |= getattr(call, _STATUSES_MARK, frozenset())
        mark = getattr(call, _SIGN_IN_MARK, None)
        if mark is not None:
            sign_in.add(mark)
    return statuses, sign_in


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
