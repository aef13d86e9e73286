"""One table of behaviours, run against both providers through their SDKs and local servers."""

from __future__ import annotations

import base64

from pydantic import BaseModel

from omnistack_core.ai import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    TextDelta,
    TextPart,
    ToolCallDelta,
    call_tools,
    tool,
)
from omnistack_core.testing.ai_server import ToolCallScript
from tests.ai.ai_clients import MODELS, Providers


class Weather(BaseModel):
    city: str
    temperature: int


def get_weather(city: str) -> dict[str, object]:
    """The weather in a city now."""
    return {"city": city, "temperature": 21}


def ask(provider: str, *messages: Message, **options: object) -> ChatRequest:
    return ChatRequest(messages=list(messages), model=MODELS[provider], **options)  # type: ignore[arg-type]


async def test_plain_chat(providers: Providers, provider: str) -> None:
    server = providers.server(provider)
    server.reply("Paris is the capital of France.")
    client = providers.client()

    response = await client.chat(ask(provider, Message.user("Capital of France?")))
    await client.aclose()

    assert response.text == "Paris is the capital of France."
    assert response.provider == provider
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.cost is not None
    assert response.cost > 0
    assert response.latency_ms > 0


async def test_the_system_prompt_goes_where_the_provider_wants_it(
    providers: Providers, provider: str
) -> None:
    server = providers.server(provider)
    client = providers.client()

    await client.chat(
        ask(provider, Message.system("Answer in French."), Message.user("Hello"), max_tokens=50)
    )
    await client.aclose()

    body = server.requests[-1].body
    if provider == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
        assert body["max_completion_tokens"] == 50
    else:
        assert body["system"] == "Answer in French."
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["max_tokens"] == 50


async def test_a_multi_turn_conversation_keeps_its_order(
    providers: Providers, provider: str
) -> None:
    server = providers.server(provider)
    client = providers.client()

    await client.chat(
        ask(
            provider,
            Message.user("My name is Ada."),
            Message.assistant("Hello Ada."),
            Message.user("What is my name?"),
        )
    )
    await client.aclose()

    sent = server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "Hello Ada." in str(sent[1]["content"])


async def test_streamed_text_reassembles_to_the_whole_answer_with_usage(
    providers: Providers, provider: str
) -> None:
    server = providers.server(provider)
    answer = "The quick brown fox jumps over the lazy dog, twice."
    server.reply(answer, chunk_size=3)
    client = providers.client()

    events = [event async for event in client.stream(ask(provider, Message.user("Tell me")))]
    await client.aclose()

    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    final = events[-1]
    assert isinstance(final, ChatResponse)
    assert len(deltas) > 5
    assert "".join(deltas) == final.text == answer
    assert final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0
    assert server.requests[-1].streamed
    if provider == "openai":
        assert server.requests[-1].body["stream_options"] == {"include_usage": True}


async def test_a_tool_call_round_trip(providers: Providers, provider: str) -> None:
    server = providers.server(provider)
    server.reply(tool_calls=[ToolCallScript("get_weather", {"city": "Lisbon"})])
    server.reply("It is 21 degrees in Lisbon.")
    client = providers.client()
    question = ask(provider, Message.user("Weather in Lisbon?"), tools=[tool(get_weather)])

    first = await client.chat(question)
    results = await call_tools(first.tool_calls, [get_weather])
    second = await client.chat(
        ask(
            provider,
            *question.messages,
            first.message(),
            *results,
            tools=[tool(get_weather)],
        )
    )
    await client.aclose()

    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, dict(call.arguments)) == ("get_weather", {"city": "Lisbon"})
    assert second.text == "It is 21 degrees in Lisbon."
    sent = server.requests[-1].body
    if provider == "openai":
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert sent["messages"][-1]["role"] == "tool"
        assert sent["messages"][-1]["tool_call_id"] == call.id
    else:
        assert sent["tools"][0]["name"] == "get_weather"
        result = sent["messages"][-1]
        assert result["role"] == "user"
        assert result["content"][0]["type"] == "tool_result"
        assert result["content"][0]["tool_use_id"] == call.id


async def test_streamed_tool_calls_arrive_in_pieces_and_whole(
    providers: Providers, provider: str
) -> None:
    server = providers.server(provider)
    server.reply(tool_calls=[ToolCallScript("get_weather", {"city": "Porto"})], chunk_size=2)
    client = providers.client()

    events = [
        event
        async for event in client.stream(
            ask(provider, Message.user("Weather?"), tools=[tool(get_weather)])
        )
    ]
    await client.aclose()

    pieces = [event for event in events if isinstance(event, ToolCallDelta)]
    final = events[-1]
    assert isinstance(final, ChatResponse)
    assert pieces[0].name == "get_weather"
    assert len(pieces) > 2
    assert final.finish_reason == "tool_calls"
    assert dict(final.tool_calls[0].arguments) == {"city": "Porto"}


def script_structured(providers: Providers, provider: str, *answers: str) -> None:
    """Queue answers as each provider gives structured output: text, or the forced tool."""
    import json  # noqa: PLC0415

    server = providers.server(provider)
    for answer in answers:
        if provider == "openai":
            server.reply(answer)
        else:
            server.reply(tool_calls=[ToolCallScript("Weather", json.loads(answer))])


async def test_structured_output_into_a_pydantic_model(providers: Providers, provider: str) -> None:
    script_structured(providers, provider, '{"city": "Lisbon", "temperature": 21}')
    client = providers.client()

    weather = await client.structured(ask(provider, Message.user("Weather?")), Weather)
    await client.aclose()

    assert weather == Weather(city="Lisbon", temperature=21)
    body = providers.server(provider).requests[-1].body
    if provider == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Weather"
    else:
        assert body["tool_choice"] == {"type": "tool", "name": "Weather"}


async def test_an_invalid_structured_answer_is_repaired_once(
    providers: Providers, provider: str
) -> None:
    script_structured(
        providers,
        provider,
        '{"city": "Lisbon", "temperature": "warm"}',
        '{"city": "Lisbon", "temperature": 21}',
    )
    client = providers.client()

    weather = await client.structured(ask(provider, Message.user("Weather?")), Weather)
    await client.aclose()

    assert weather.temperature == 21
    server = providers.server(provider)
    assert len(server.requests) == 2
    assert "temperature" in str(server.requests[-1].body["messages"][-1]["content"])


async def test_images_reach_each_provider_in_its_own_shape(
    providers: Providers, provider: str
) -> None:
    server = providers.server(provider)
    client = providers.client()
    picture = ImagePart(data=b"\x89PNG fake bytes", media_type="image/png")
    linked = ImagePart(url="https://example.com/cat.jpg")

    await client.chat(ask(provider, Message.user([TextPart("What is in these?"), picture, linked])))
    await client.aclose()

    [message] = server.requests[-1].body["messages"]
    encoded = base64.b64encode(b"\x89PNG fake bytes").decode()
    if provider == "openai":
        assert message["content"] == [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]
    else:
        assert message["content"] == [
            {"type": "text", "text": "What is in these?"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": encoded},
            },
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]
