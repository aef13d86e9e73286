"""Tools the model may call, described from plain Python functions or pydantic models.

``tool(get_weather)`` reads the function's signature and docstring: each parameter becomes a
property of the JSON schema (its annotation gives the type, its default makes it optional),
the docstring's first paragraph the description. ``tool(WeatherQuery)`` uses a pydantic
model's own schema. :func:`call_tools` runs the functions a response asks for, with the
arguments validated against the same schema, and returns the tool messages that carry their
results back to the model.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from omnistack_core.ai.types import Message, ToolCall, ToolSpec


def tool(
    target: Callable[..., Any] | type[BaseModel],
    *,
    name: str | None = None,
    description: str | None = None,
) -> ToolSpec:
    """Describe a function or a pydantic model as a tool.

    Args:
        target: A function (sync or async) whose parameters are the tool's arguments, or a
            pydantic model whose fields are.
        name: The tool's name; the function's or model's name by default.
        description: What it does; the docstring's first paragraph by default.
    """
    model = target if isinstance(target, type) and issubclass(target, BaseModel) else None
    schema = (model or _arguments_model(target)).model_json_schema()
    schema.pop("title", None)
    doc = inspect.getdoc(target) or ""
    return ToolSpec(
        name=name or str(getattr(target, "__name__", "tool")),
        description=description if description is not None else doc.split("\n\n")[0],
        parameters=schema,
    )


async def call_tools(
    calls: Sequence[ToolCall], functions: Sequence[Callable[..., Any]] | Mapping[str, Any]
) -> list[Message]:
    """Run the functions ``calls`` ask for; return one tool message per call.

    Arguments are validated against the function's signature first. An unknown tool, invalid
    arguments or an exception become the result text (``error: …``), so the model can see
    what went wrong and correct itself.

    Args:
        calls: A response's ``tool_calls``.
        functions: The functions, by name or as a list (named by ``__name__``).
    """
    by_name = (
        dict(functions)
        if isinstance(functions, Mapping)
        else {function.__name__: function for function in functions}
    )
    messages = []
    for call in calls:
        function = by_name.get(call.name)
        if function is None:
            result = f"error: there is no tool called {call.name!r}"
        else:
            result = await _run(function, call.arguments)
        messages.append(Message.tool_result(call, result))
    return messages


async def _run(function: Callable[..., Any], arguments: Mapping[str, Any]) -> str:
    try:
        validated = _arguments_model(function).model_validate(dict(arguments))
    except ValidationError as exc:
        return f"error: invalid arguments: {exc.errors(include_url=False, include_input=False)}"
    values = {name: getattr(validated, name) for name in type(validated).model_fields}
    try:
        result = function(**values)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # noqa: BLE001 - the model gets the error as the tool's result
        return f"error: {type(exc).__name__}: {exc}"
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


def _arguments_model(function: Callable[..., Any]) -> type[BaseModel]:
    hints = get_type_hints(function)
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    return create_model(
        f"{getattr(function, '__name__', 'tool')}_arguments",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
