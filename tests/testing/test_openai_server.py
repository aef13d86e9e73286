"""The local OpenAI answers as OpenAI does, seen through OpenAI's own async SDK."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

pytest.importorskip("openai", reason="needs the ai extra")

import openai
import pydantic

from omnistack_core.testing import LocalOpenAI, ToolCallScript

MODEL = "gpt-4o-mini"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = "Once upon a time, a fox outran the hounds across the whole of the valley."
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}


@pytest.fixture
async def client(local_openai: LocalOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(api_key=local_openai.api_key, base_url=local_openai.url, max_retries=0)
    try:
        yield sdk
    finally:
        await sdk.close()


async def ask(client: openai.AsyncOpenAI, **params: Any) -> Any:
    return await client.chat.completions.create(**{"model": MODEL, "messages": QUESTION, **params})


async def post_raw(client: openai.AsyncOpenAI, body: dict[str, Any]) -> object:
    """A request the typed SDK would not build, sent through the SDK's own client."""
    return await client.post("/chat/completions", cast_to=object, body=body)


async def read_content(stream: Any, into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")  # noqa: PERF401 - kept on error


# Answers --------------------------------------------------------------------------------------


async def test_a_chat_is_answered_with_the_scripted_text(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Paris.")

    raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=QUESTION)
    completion = raw.parse()

    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", "Paris.")
    assert choice.message.refusal is None
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.system_fingerprint is not None
    assert completion.system_fingerprint.startswith("fp_")
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["openai-processing-ms"].isdigit()
    assert raw.headers["x-ratelimit-limit-requests"].isdigit()


async def test_usage_counts_words_and_punctuation_of_the_prompt_and_the_answer(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Paris.")

    completion = await ask(client)

    usage = completion.usage
    assert usage is not None
    # "What is the capital of France ?" and "Paris ."
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 2, 9)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


async def test_scripted_usage_replaces_the_counts(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Paris.", usage={"prompt_tokens": 1200, "cached_tokens": 1024})

    completion = await ask(client)

    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 1200
    assert completion.usage.total_tokens == 1202
    assert completion.usage.prompt_tokens_details.cached_tokens == 1024


def test_an_unknown_usage_name_is_refused_when_scripted(local_openai: LocalOpenAI) -> None:
    with pytest.raises(ValueError, match="input_tokens"):
        local_openai.reply("Paris.", usage={"input_tokens": 3})


@pytest.mark.parametrize(
    "script",
    [
        lambda server: server.reply("Hi", chunk_size=0),
        lambda server: server.reply("Hi", delay=-1),
        lambda server: server.fail(200),
        lambda server: server.fail(500, times=0),
        lambda server: server.fail_mid_stream(after_chunks=-1),
    ],
    ids=["chunk-size", "delay", "status", "times", "after-chunks"],
)
def test_scripting_out_of_range_is_refused_at_once(local_openai: LocalOpenAI, script: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case words its own message
        script(local_openai)

    assert local_openai.queued == 0


async def test_with_nothing_queued_the_answer_names_the_model(client: openai.AsyncOpenAI) -> None:
    completion = await ask(client, model="gpt-4.1")

    assert completion.choices[0].message.content == "Hello from gpt-4.1."


async def test_the_system_prompt_is_recorded_where_it_was_sent(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    messages = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
    ]

    await ask(client, messages=messages, temperature=0)

    (request,) = local_openai.requests
    assert (request.method, request.path, request.status) == ("POST", "/v1/chat/completions", 200)
    assert request.body["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert request.body["temperature"] == 0
    assert request.headers["authorization"] == f"Bearer {local_openai.api_key}"
    assert request.streamed is False


async def test_queued_replies_answer_the_turns_of_a_conversation_in_order(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Paris.")
    local_openai.reply("About 2.1 million.")
    history: list[Any] = [{"role": "user", "content": "Capital of France?"}]

    first = await ask(client, messages=history)
    history += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "How many people live there?"},
    ]
    second = await ask(client, messages=history)

    assert second.choices[0].message.content == "About 2.1 million."
    assert local_openai.requests[1].body["messages"][1] == {
        "role": "assistant",
        "content": "Paris.",
    }
    assert local_openai.queued == 0


async def test_a_text_longer_than_max_completion_tokens_is_cut_with_finish_length(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(STORY)

    completion = await ask(client, max_completion_tokens=4)

    assert completion.choices[0].message.content == "Once upon a time"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4


async def test_response_format_json_schema_is_parsed_by_the_sdk(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    class Capital(pydantic.BaseModel):
        city: str
        country: str

    local_openai.reply('{"city": "Paris", "country": "France"}')

    completion = await client.chat.completions.parse(
        model=MODEL, messages=QUESTION, response_format=Capital
    )

    assert completion.choices[0].message.parsed == Capital(city="Paris", country="France")
    response_format = local_openai.requests[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Capital"


# Tool calls -----------------------------------------------------------------------------------


async def test_a_tool_call_is_answered_with_its_arguments_as_a_json_string(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(tool_calls=[ToolCallScript("get_weather", WEATHER_ARGS)])

    completion = await ask(client, tools=[WEATHER_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS


async def test_a_tool_result_is_taken_back_and_answered(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(tool_calls=[ToolCallScript("get_weather", WEATHER_ARGS, id="call_1")])
    local_openai.reply("It is 18 degrees in Paris.")
    first = await ask(client, tools=[WEATHER_TOOL])
    call = (first.choices[0].message.tool_calls or [])[0]

    second = await ask(
        client,
        tools=[WEATHER_TOOL],
        messages=[
            *QUESTION,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 18}'},
        ],
    )

    assert call.id == "call_1"
    assert second.choices[0].message.content == "It is 18 degrees in Paris."


async def test_a_streamed_tool_call_accumulates_to_parsed_arguments(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(tool_calls=[ToolCallScript("get_weather", WEATHER_ARGS)], chunk_size=8)

    async with client.chat.completions.stream(
        model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_completion()

    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.parsed_arguments == WEATHER_ARGS
    assert final.choices[0].finish_reason == "tool_calls"
    # The arguments came in pieces, each its own chunk.
    assert kinds.count("tool_calls.function.arguments.delta") > 1


# Streams --------------------------------------------------------------------------------------


async def test_a_stream_reassembles_to_the_text_and_ends_with_the_usage(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(STORY, chunk_size=5)

    stream = await ask(client, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]

    *chunks_with_choices, last = chunks
    deltas = [chunk.choices[0].delta for chunk in chunks_with_choices]
    assert deltas[0].role == "assistant"
    assert "".join(delta.content or "" for delta in deltas) == STORY
    assert max(len(delta.content or "") for delta in deltas) == 5
    assert chunks_with_choices[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks_with_choices)
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == LocalOpenAI.count_tokens(STORY)
    assert local_openai.requests[0].streamed is True


async def test_a_stream_without_include_usage_carries_no_usage(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Paris.")

    stream = await ask(client, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(chunk.usage is None and chunk.choices for chunk in chunks)


async def test_a_stream_broken_mid_way_raises_while_iterating(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(STORY, chunk_size=4)
    local_openai.fail_mid_stream(after_chunks=2)
    received: list[str] = []

    stream = await ask(client, stream=True)
    with pytest.raises(openai.APIError) as caught:
        await read_content(stream, received)

    assert "".join(received) == STORY[:8]
    assert caught.value.type == "server_error"


async def test_an_abrupt_break_raises_a_connection_error(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply(STORY)
    local_openai.fail_mid_stream(after_chunks=1, abrupt=True)

    stream = await ask(client, stream=True)
    with pytest.raises(openai.APIConnectionError):
        await read_content(stream, [])


async def test_a_break_waits_for_a_streamed_request(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.fail_mid_stream(after_chunks=0)

    plain = await ask(client)
    stream = await ask(client, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        await read_content(stream, received)

    assert plain.choices[0].message.content == f"Hello from {MODEL}."
    # Only the opening chunk, with the role and no content, came before the break.
    assert received == [""]


async def test_a_client_closing_a_slow_stream_early_is_a_disconnect(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI, capfd: pytest.CaptureFixture[str]
) -> None:
    local_openai.reply(STORY, chunk_size=2, chunk_delay=0.05)

    stream = await ask(client, stream=True)
    async for _ in stream:
        break
    await stream.close()

    assert local_openai.wait_for_disconnect(timeout=2)
    assert local_openai.disconnects == 1
    assert capfd.readouterr().err == ""


async def test_the_stream_on_the_wire_is_data_lines_ending_with_done(
    local_openai: LocalOpenAI,
) -> None:
    local_openai.reply("Paris.")
    body = {"model": MODEL, "messages": QUESTION, "stream": True}
    headers = {"Authorization": f"Bearer {local_openai.api_key}"}

    async with httpx.AsyncClient(base_url=local_openai.url) as http:
        response = await http.post("/chat/completions", json=body, headers=headers)

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    *chunks, done, after = response.text.split("\n\n")
    assert (done, after) == ("data: [DONE]", "")
    assert all(chunk.startswith("data: {") for chunk in chunks)
    assert [json.loads(chunk[6:])["object"] for chunk in chunks] == ["chat.completion.chunk"] * 4


async def test_stopping_the_server_ends_an_answer_it_is_holding(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Too late.", delay=5)
    pending = asyncio.create_task(ask(client))
    done, _ = await asyncio.wait({pending}, timeout=0.2)
    assert not done
    assert len(local_openai.requests) == 1
    started = time.monotonic()

    await asyncio.to_thread(local_openai.stop)

    with pytest.raises(openai.APIConnectionError):
        await pending
    assert time.monotonic() - started < 1


# Errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, (openai.BadRequestError, "invalid_request_error", None)),
        (401, (openai.AuthenticationError, "invalid_request_error", "invalid_api_key")),
        (404, (openai.NotFoundError, "invalid_request_error", "model_not_found")),
        (429, (openai.RateLimitError, "requests", "rate_limit_exceeded")),
        (500, (openai.InternalServerError, "server_error", None)),
        (503, (openai.InternalServerError, "server_error", None)),
    ],
)
async def test_a_scripted_error_raises_the_sdk_exception_for_its_status(
    local_openai: LocalOpenAI,
    client: openai.AsyncOpenAI,
    status: int,
    expected: tuple[type[openai.APIStatusError], str, str | None],
) -> None:
    exception, error_type, code = expected
    local_openai.fail(status)

    with pytest.raises(exception) as caught:
        await ask(client)

    error = caught.value
    assert error.status_code == status
    assert (error.type, error.code, error.param) == (error_type, code, None)
    assert error.message.startswith(f"Error code: {status} - ")
    assert error.response.headers["x-request-id"].startswith("req_")
    assert error.request_id == error.response.headers["x-request-id"]


async def test_a_rate_limit_carries_retry_after_and_the_rate_limit_headers(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.fail(429, retry_after=2)

    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client)

    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "2s"
    assert "Please try again in 2s" in str(caught.value)


async def test_the_sdk_retry_honours_retry_after_and_takes_the_next_answer(
    local_openai: LocalOpenAI,
) -> None:
    local_openai.fail(429, retry_after=0.1)
    local_openai.reply("Paris.")
    sdk = openai.AsyncOpenAI(api_key=local_openai.api_key, base_url=local_openai.url, max_retries=1)
    try:
        completion = await ask(sdk)
    finally:
        await sdk.close()

    first, retry = local_openai.requests
    assert completion.choices[0].message.content == "Paris."
    assert (first.status, retry.status) == (429, 200)
    assert retry.headers["x-stainless-retry-count"] == "1"
    # The SDK's own backoff would wait at least 0.375 s.
    assert 0.1 <= retry.received_at - first.received_at < 0.375


async def test_a_failure_queued_times_fails_that_many_requests(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.fail(500, message="Boom.", times=2)

    for _ in range(2):
        with pytest.raises(openai.InternalServerError, match=r"Boom\."):
            await ask(client)
    completion = await ask(client)

    assert completion.choices[0].finish_reason == "stop"


async def test_a_delay_past_the_sdk_timeout_raises_its_timeout_error(
    local_openai: LocalOpenAI, client: openai.AsyncOpenAI
) -> None:
    local_openai.reply("Too late.", delay=3)
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        await ask(client, timeout=0.2)

    assert time.monotonic() - started < 1
    # The server saw the client leave while it waited.
    assert local_openai.wait_for_disconnect(timeout=2)


async def test_a_wrong_key_is_a_401_showing_only_the_ends_of_the_key(
    local_openai: LocalOpenAI,
) -> None:
    sdk = openai.AsyncOpenAI(api_key="sk-wrong-0123456789wxyz", base_url=local_openai.url)
    try:
        with pytest.raises(openai.AuthenticationError) as caught:
            await ask(sdk)
    finally:
        await sdk.close()

    assert caught.value.code == "invalid_api_key"
    assert "sk-****************wxyz" in caught.value.message
    assert local_openai.requests[0].status == 401


# Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"messages": QUESTION}, (None, None, "you must provide a model parameter")),
        ({"model": MODEL}, ("messages", "missing_required_parameter", "'messages'")),
        ({"model": MODEL, "messages": []}, ("messages", "empty_array", "empty array")),
        (
            {"model": MODEL, "messages": [{"role": "robot", "content": "Hi"}]},
            ("messages[0].role", "invalid_value", "Invalid value: 'robot'"),
        ),
        (
            {"model": MODEL, "messages": [{"content": "Hi"}]},
            ("messages[0].role", "missing_required_parameter", "'messages[0].role'"),
        ),
        (
            {"model": MODEL, "messages": [*QUESTION, {"role": "tool", "tool_call_id": "call_1"}]},
            (
                "messages.[1].role",
                None,
                "must be a response to a preceeding message with 'tool_calls'",
            ),
        ),
        (
            {
                "model": MODEL,
                "messages": [
                    *QUESTION,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "call_1", "type": "function", "function": WEATHER_TOOL}
                        ],
                    },
                ],
            },
            ("messages.[1].role", None, "did not have response messages: call_1"),
        ),
        (
            {"model": MODEL, "messages": QUESTION, "stream_options": {"include_usage": True}},
            ("stream_options", None, "only allowed when 'stream' is enabled"),
        ),
        (
            {"model": MODEL, "messages": QUESTION, "response_format": {"type": "json_object"}},
            ("messages", None, "must contain the word 'json'"),
        ),
    ],
    ids=[
        "no-model",
        "no-messages",
        "empty-messages",
        "unknown-role",
        "no-role",
        "tool-without-call",
        "call-without-tool",
        "stream-options-without-stream",
        "json-object-without-json",
    ],
)
async def test_an_invalid_request_is_a_400_in_openais_words(
    local_openai: LocalOpenAI,
    client: openai.AsyncOpenAI,
    body: dict[str, Any],
    expected: tuple[str | None, str | None, str],
) -> None:
    param, code, message = expected
    local_openai.reply("Never sent.")

    with pytest.raises(openai.BadRequestError) as caught:
        await post_raw(client, body)

    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.type == "invalid_request_error"
    assert message in caught.value.message
    # A refused request takes nothing from the queue.
    assert local_openai.queued == 1


async def test_another_route_is_a_404_naming_it(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /v1/models\)"):
        await client.models.list()
