"""Tools from functions and models: their schemas, and calling them with validated arguments."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from omnistack_core.ai import ToolCall, call_tools, tool


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> dict[str, object]:
    """The weather in a city now.

    Longer notes that the model does not need.
    """
    return {"city": city, "temperature": 21 if unit == "c" else 70, "unit": unit}


async def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def explode() -> str:
    """Always fails."""
    raise RuntimeError("boom")


class Refund(BaseModel):
    """Refund an order."""

    order_id: str = Field(description="The order to refund")
    amount_cents: int = Field(gt=0)


def test_a_function_becomes_a_tool_with_a_json_schema() -> None:
    spec = tool(get_weather)

    assert spec.name == "get_weather"
    assert spec.description == "The weather in a city now."
    assert spec.parameters["type"] == "object"
    assert spec.parameters["required"] == ["city"]
    assert spec.parameters["properties"]["city"] == {"title": "City", "type": "string"}
    assert spec.parameters["properties"]["unit"]["enum"] == ["c", "f"]
    assert spec.parameters["additionalProperties"] is False


def test_a_pydantic_model_becomes_a_tool_with_its_schema() -> None:
    spec = tool(Refund, name="refund")

    assert spec.name == "refund"
    assert spec.description == "Refund an order."
    assert spec.parameters["required"] == ["order_id", "amount_cents"]
    assert spec.parameters["properties"]["order_id"]["description"] == "The order to refund"


async def test_tool_calls_run_with_validated_arguments_sync_or_async() -> None:
    calls = [
        ToolCall("call_1", "get_weather", {"city": "Lisbon"}),
        ToolCall("call_2", "add", {"a": 2, "b": "3"}),
    ]

    results = await call_tools(calls, [get_weather, add])

    assert [(m.role, m.tool_call_id) for m in results] == [
        ("tool", "call_1"),
        ("tool", "call_2"),
    ]
    assert results[0].text == '{"city": "Lisbon", "temperature": 21, "unit": "c"}'
    assert results[1].text == "5"


async def test_bad_calls_become_errors_the_model_can_read() -> None:
    calls = [
        ToolCall("call_1", "get_weather", {"unit": "k"}),
        ToolCall("call_2", "launch", {}),
        ToolCall("call_3", "explode", {}),
    ]

    results = await call_tools(calls, {"get_weather": get_weather, "explode": explode})

    assert results[0].text.startswith("error: invalid arguments:")
    assert "city" in results[0].text
    assert results[1].text == "error: there is no tool called 'launch'"
    assert results[2].text == "error: RuntimeError: boom"
