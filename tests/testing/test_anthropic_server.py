"""The local Anthropic answers as Anthropic does, seen through Anthropic's own async SDK."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest

pytest.importorskip("anthropic", reason="needs the ai extra")

import anthropic

from omnistack_core.testing import LocalAnthropic, ToolCallScript

MODEL = "claude-sonnet-5"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = "Once upon a time, a fox outran the hounds across the whole of the valley."
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}


@pytest.fixture
async def client(local_anthropic: LocalAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(
        api_key=local_anthropic.api_key, base_url=local_anthropic.url, max_retries=0
    )
    try:
        yield sdk
    finally:
        await sdk.close()


async def ask(client: anthropic.AsyncAnthropic, **params: Any) -> Any:
    return await client.messages.create(
        **{"model": MODEL, "max_tokens": 256, "messages": QUESTION, **params}
    )


async def post_raw(server: LocalAnthropic, body: object, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.post("/v1/messages", json=body, headers=headers)


async def stream_text(client: anthropic.AsyncAnthropic, into: list[str]) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=QUESTION) as stream:
        async for text in stream.text_stream:
            into.append(text)  # noqa: PERF401 - what came before an error is kept


# Answers --------------------------------------------------------------------------------------


async def test_a_message_is_answered_with_the_scripted_text(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Paris.")

    raw = await client.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=QUESTION
    )
    message = await raw.parse()

    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "Paris."}
    ]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["anthropic-ratelimit-requests-limit"].isdigit()


async def test_usage_counts_words_and_punctuation_of_the_prompt_and_the_answer(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Paris.")

    message = await ask(client, system="Answer briefly.")

    usage = message.usage
    # "Answer briefly ." then "What is the capital of France ?"; "Paris ."
    assert (usage.input_tokens, usage.output_tokens) == (10, 2)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)


async def test_scripted_usage_replaces_the_counts(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Paris.", usage={"input_tokens": 3, "cache_read_input_tokens": 2048})

    message = await ask(client)

    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 2)
    assert message.usage.cache_read_input_tokens == 2048


async def test_with_nothing_queued_the_answer_names_the_model(
    client: anthropic.AsyncAnthropic,
) -> None:
    message = await ask(client, model="claude-haiku-4-5")

    assert message.content[0].text == "Hello from claude-haiku-4-5."


@pytest.mark.parametrize(
    "system",
    ["Answer in one word.", [{"type": "text", "text": "Answer in one word."}]],
    ids=["string", "text-blocks"],
)
async def test_the_system_prompt_is_recorded_at_the_top_level(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic, system: Any
) -> None:
    await ask(client, system=system)

    (request,) = local_anthropic.requests
    assert (request.method, request.path, request.status) == ("POST", "/v1/messages", 200)
    assert request.body["system"] == system
    assert request.body["messages"] == QUESTION
    assert request.headers["authorization"] == f"Bearer {local_anthropic.api_key}"
    assert request.headers["anthropic-version"]
    assert request.streamed is False


async def test_queued_replies_answer_the_turns_of_a_conversation_in_order(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Paris.")
    local_anthropic.reply("About 2.1 million.")

    first = await ask(client)
    second = await ask(
        client,
        messages=[
            *QUESTION,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "How many people live there?"},
        ],
    )

    assert second.content[0].text == "About 2.1 million."
    assert local_anthropic.requests[1].body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Paris."}],
    }
    assert local_anthropic.queued == 0


async def test_a_text_longer_than_max_tokens_is_cut_with_stop_reason_max_tokens(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply(STORY)

    message = await ask(client, max_tokens=4)

    assert message.content[0].text == "Once upon a time"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 4


# Tool use -------------------------------------------------------------------------------------


async def test_a_tool_use_is_answered_with_its_input_as_an_object(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Let me look.", tool_calls=[ToolCallScript("get_weather", WEATHER_ARGS)])

    message = await ask(client, tools=[WEATHER_TOOL])

    text, tool_use = message.content
    assert text.text == "Let me look."
    assert tool_use.type == "tool_use"
    assert tool_use.id.startswith("toolu_")
    assert (tool_use.name, tool_use.input) == ("get_weather", WEATHER_ARGS)
    assert message.stop_reason == "tool_use"


async def test_a_tool_result_is_taken_back_and_answered(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply(tool_calls=[ToolCallScript("get_weather", WEATHER_ARGS, id="toolu_1")])
    local_anthropic.reply("It is 18 degrees in Paris.")
    first = await ask(client, tools=[WEATHER_TOOL])

    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18"}
    history = [
        *QUESTION,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [result]},
    ]

    second = await ask(client, tools=[WEATHER_TOOL], messages=history)

    assert [block.type for block in first.content] == ["tool_use"]
    assert second.content[0].text == "It is 18 degrees in Paris."


async def test_a_streamed_tool_use_accumulates_to_its_input(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply(
        "Checking.", tool_calls=[ToolCallScript("get_weather", WEATHER_ARGS)], chunk_size=6
    )

    async with client.messages.stream(
        model=MODEL, max_tokens=256, messages=QUESTION, tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [event.type async for event in stream]
        message = await stream.get_final_message()

    text, tool_use = message.content
    assert text.type == "text"
    assert text.text == "Checking."
    assert tool_use.type == "tool_use"
    assert (tool_use.name, tool_use.input) == ("get_weather", WEATHER_ARGS)
    assert message.stop_reason == "tool_use"
    # The input came in pieces, each its own event.
    assert kinds.count("input_json") > 1


# Streams --------------------------------------------------------------------------------------


async def test_a_stream_reassembles_to_the_text_and_the_final_message_has_usage(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply(STORY, chunk_size=5)

    async with client.messages.stream(model=MODEL, max_tokens=256, messages=QUESTION) as stream:
        pieces = [text async for text in stream.text_stream]
        message = await stream.get_final_message()

    assert "".join(pieces) == STORY
    assert max(len(piece) for piece in pieces) == 5
    assert message.content[0].text == STORY
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 7
    assert message.usage.output_tokens == LocalAnthropic.count_tokens(STORY)
    assert local_anthropic.requests[0].streamed is True


async def test_a_stream_sends_the_events_in_anthropics_order(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Paris is lovely.", chunk_size=8)

    stream = await ask(client, stream=True)
    events = [event async for event in stream]

    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, _, first_delta, *_, message_delta, _ = events
    assert start.message.content == []
    assert start.message.usage.input_tokens == 7
    assert first_delta.delta.type == "text_delta"
    assert message_delta.delta.stop_reason == "end_turn"
    assert message_delta.usage.output_tokens == 4


async def test_a_stream_broken_mid_way_raises_overloaded_while_iterating(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply(STORY, chunk_size=4)
    local_anthropic.fail_mid_stream(after_chunks=2)
    received: list[str] = []

    with pytest.raises(anthropic.APIStatusError) as caught:
        await stream_text(client, received)

    assert "".join(received) == STORY[:8]
    assert caught.value.type == "overloaded_error"
    assert caught.value.api_message == "Overloaded"


async def test_an_abrupt_break_fails_the_stream(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply(STORY)
    local_anthropic.fail_mid_stream(after_chunks=1, abrupt=True)
    received: list[str] = []

    # Unlike OpenAI's, this SDK lets its HTTP client's error through unwrapped.
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        await stream_text(client, received)

    assert "".join(received) == STORY[:4]


async def test_a_client_closing_a_slow_stream_early_is_a_disconnect(
    local_anthropic: LocalAnthropic,
    client: anthropic.AsyncAnthropic,
    capfd: pytest.CaptureFixture[str],
) -> None:
    local_anthropic.reply(STORY, chunk_size=2, chunk_delay=0.05)

    async with client.messages.stream(model=MODEL, max_tokens=256, messages=QUESTION) as stream:
        async for _ in stream.text_stream:
            break

    assert local_anthropic.wait_for_disconnect(timeout=2)
    assert local_anthropic.disconnects == 1
    assert capfd.readouterr().err == ""


async def test_the_stream_on_the_wire_names_each_event_as_its_data_types_it(
    local_anthropic: LocalAnthropic,
) -> None:
    local_anthropic.reply("Paris.")
    body = {"model": MODEL, "max_tokens": 16, "messages": QUESTION, "stream": True}
    headers = {"x-api-key": local_anthropic.api_key, "anthropic-version": "2023-06-01"}

    response = await post_raw(local_anthropic, body, headers)

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = [block.split("\n") for block in response.text.split("\n\n") if block]
    names = [event.removeprefix("event: ") for event, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [json.loads(data.removeprefix("data: "))["type"] for _, data in events] == names


# Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_a_scripted_error_raises_the_sdk_exception_for_its_status(
    local_anthropic: LocalAnthropic,
    client: anthropic.AsyncAnthropic,
    status: int,
    exception: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    local_anthropic.fail(status)

    with pytest.raises(exception) as caught:
        await ask(client)

    error = caught.value
    assert error.status_code == status
    assert error.type == error_type
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    assert error.body == {
        "type": "error",
        "error": {"type": error_type, "message": error.api_message},
        "request_id": error.request_id,
    }


def test_overloaded_is_a_kind_of_internal_server_error() -> None:
    assert issubclass(anthropic.OverloadedError, anthropic.InternalServerError)


async def test_a_rate_limit_carries_retry_after_and_the_rate_limit_headers(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.fail(429, retry_after=3)

    with pytest.raises(anthropic.RateLimitError) as caught:
        await ask(client)

    headers = caught.value.response.headers
    assert headers["retry-after"] == "3"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")


async def test_a_scripted_code_is_the_errors_error_code(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.fail(429, message="Spend limit reached.", code="enforced_spend_limit_reached")

    with pytest.raises(anthropic.RateLimitError) as caught:
        await ask(client)

    assert caught.value.error_code == "enforced_spend_limit_reached"
    assert caught.value.api_message == "Spend limit reached."


async def test_the_sdk_retry_honours_retry_after_and_takes_the_next_answer(
    local_anthropic: LocalAnthropic,
) -> None:
    local_anthropic.fail(529, retry_after=0.1)
    local_anthropic.reply("Paris.")
    sdk = anthropic.AsyncAnthropic(
        api_key=local_anthropic.api_key, base_url=local_anthropic.url, max_retries=1
    )
    try:
        message = await ask(sdk)
    finally:
        await sdk.close()

    first, retry = local_anthropic.requests
    assert message.content[0].text == "Paris."
    assert (first.status, retry.status) == (529, 200)
    assert retry.headers["x-stainless-retry-count"] == "1"
    # The SDK's own backoff would wait at least 0.375 s.
    assert 0.1 <= retry.received_at - first.received_at < 0.375


async def test_a_delay_past_the_sdk_timeout_raises_its_timeout_error(
    local_anthropic: LocalAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    local_anthropic.reply("Too late.", delay=3)
    started = time.monotonic()

    with pytest.raises(anthropic.APITimeoutError):
        await ask(client, timeout=0.2)

    assert time.monotonic() - started < 1
    # The server saw the client leave while it waited.
    assert local_anthropic.wait_for_disconnect(timeout=2)


async def test_a_wrong_key_is_a_401(local_anthropic: LocalAnthropic) -> None:
    sdk = anthropic.AsyncAnthropic(
        api_key="sk-ant-wrong", base_url=local_anthropic.url, max_retries=0
    )
    try:
        with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
            await ask(sdk)
    finally:
        await sdk.close()


async def test_the_key_may_come_in_x_api_key(local_anthropic: LocalAnthropic) -> None:
    response = await post_raw(
        local_anthropic,
        {"model": MODEL, "max_tokens": 16, "messages": QUESTION},
        {"x-api-key": local_anthropic.api_key, "anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": f"Hello from {MODEL}."}]


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"anthropic-version": "2023-06-01"}, 401, "x-api-key header is required"),
        ({"x-api-key": "KEY"}, 400, "anthropic-version: header is required"),
    ],
    ids=["no-key", "no-version"],
)
async def test_a_request_without_the_required_headers_is_refused(
    local_anthropic: LocalAnthropic, headers: dict[str, str], status: int, message: str
) -> None:
    sent = {
        name: local_anthropic.api_key if value == "KEY" else value
        for name, value in headers.items()
    }

    response = await post_raw(
        local_anthropic, {"model": MODEL, "max_tokens": 16, "messages": QUESTION}, sent
    )

    assert response.status_code == status
    assert response.json()["error"]["message"] == message
    assert response.json()["request_id"] == response.headers["request-id"]


# Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": MODEL, "messages": QUESTION}, "max_tokens: Field required"),
        (
            {"model": MODEL, "max_tokens": 0, "messages": QUESTION},
            "max_tokens: Input should be greater than or equal to 1",
        ),
        (
            {"model": MODEL, "max_tokens": 16, "messages": []},
            "messages: at least one message is required",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 16,
                "messages": [{"role": "system", "content": "Be brief."}, *QUESTION],
            },
            (
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.'
            ),
        ),
        (
            {"model": MODEL, "max_tokens": 16, "messages": [{"role": "robot", "content": "Hi"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": ""}]},
            (
                "messages.0: all messages must have non-empty content except for the optional "
                "final assistant message"
            ),
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 16,
                "messages": [{"role": "user", "content": [{"type": "video"}]}],
            },
            "messages.0.content.0: Input tag 'video' found using 'type' does not match",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 16,
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "messages.0.content.0.text.text: Field required",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 16,
                "messages": [
                    *QUESTION,
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
                        ],
                    },
                    {"role": "user", "content": "Never mind."},
                ],
            },
            (
                "messages.1: `tool_use` ids were found without `tool_result` blocks immediately "
                "after: toolu_1."
            ),
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 16,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}],
                    }
                ],
            },
            (
                "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                "toolu_9."
            ),
        ),
    ],
    ids=[
        "no-max-tokens",
        "zero-max-tokens",
        "no-messages",
        "system-role",
        "unknown-role",
        "empty-content",
        "unknown-block",
        "text-block-without-text",
        "tool-use-without-result",
        "tool-result-without-use",
    ],
)
async def test_an_invalid_request_is_a_400_in_anthropics_words(
    local_anthropic: LocalAnthropic,
    client: anthropic.AsyncAnthropic,
    body: dict[str, Any],
    message: str,
) -> None:
    local_anthropic.reply("Never sent.")

    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.post("/v1/messages", cast_to=object, body=body)

    assert caught.value.type == "invalid_request_error"
    assert caught.value.api_message is not None
    assert caught.value.api_message.startswith(message)
    # A refused request takes nothing from the queue.
    assert local_anthropic.queued == 1


async def test_another_route_is_a_404(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.models.list()

    assert caught.value.type == "not_found_error"
