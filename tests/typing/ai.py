"""Typed use of the AI API; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from omnistack_core import create_app
from omnistack_core.ai import (
    AI,
    AIModule,
    ChatRequest,
    ChatResponse,
    Message,
    ModelPrice,
    TextDelta,
    UsageRecord,
    call_tools,
    sse_response,
    tool,
)


class Weather(BaseModel):
    city: str
    temperature: int


def get_weather(city: str) -> Weather:
    """The weather in a city now."""
    return Weather(city=city, temperature=21)


records: list[UsageRecord] = []


async def keep(record: UsageRecord) -> None:
    records.append(record)


app: FastAPI = create_app(
    modules=[
        AIModule(
            prices={"openai:my-tune": ModelPrice(input=1.0, output=2.0)},
            on_usage=[keep],
        )
    ]
)


@app.post("/ask")
async def ask(question: str, ai: AI) -> StreamingResponse:
    request = ChatRequest(
        [Message.system("Be brief."), Message.user(question)],
        model="openai:gpt-4o-mini",
        fallbacks=["anthropic:claude-haiku-4-5"],
        tools=[tool(get_weather)],
    )
    return await sse_response(ai.stream(request))


async def forecast(ai: AI, city: str) -> tuple[Weather, str]:
    request = ChatRequest([Message.user(f"Weather in {city}?")], tools=[tool(get_weather)])
    answer: ChatResponse = await ai.chat(request)
    results = await call_tools(answer.tool_calls, [get_weather])
    follow_up = ChatRequest([*request.messages, answer.message(), *results])
    text = ""
    async for event in ai.stream(follow_up):
        if isinstance(event, TextDelta):
            text += event.text
    return await ai.structured(request, Weather), text
