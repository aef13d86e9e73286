"""Anthropic's Messages API, through the official SDK.

What differs from the neutral types is settled here: system messages become the top-level
``system`` prompt; tool results travel in user messages as ``tool_result`` blocks; messages of
one role in a row are merged (the API alternates roles); ``stop`` is ``stop_sequences``;
stop reasons map onto the neutral ones; structured output is a forced call of a tool whose
input schema is the requested one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from typing import Any, ClassVar

import anthropic
import httpx2
from pydantic import SecretStr

from omnistack_core.ai.errors import AIProviderError
from omnistack_core.ai.providers.base import (
    ChatProvider,
    connection_error,
    parse_arguments,
    status_error,
    timeout_error,
)
from omnistack_core.ai.types import (
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

_FINISH_REASONS: dict[str | None, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(ChatProvider):
    """Messages through ``anthropic.AsyncAnthropic``.

    Args:
        api_key: ``ANTHROPIC_API_KEY``.
        base_url: ``ANTHROPIC_BASE_URL``: a proxy or a local server; Anthropic's when None.
    """

    name: ClassVar[str] = "anthropic"

    def __init__(self, api_key: SecretStr, *, base_url: str | None = None) -> None:
        # The client retries and falls back itself, with the request's own budget.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key.get_secret_value(), base_url=base_url, max_retries=0
        )

    async def chat(self, request: ProviderRequest) -> ChatResponse:
        """One message."""
        try:
            message = await self._client.messages.create(
                **_parameters(request), timeout=request.timeout
            )
        except (anthropic.APIError, httpx2.TransportError) as exc:
            raise _translate(exc) from exc
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                text.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(block.id, block.name, dict(block.input)))
        return _response(
            request,
            text,
            calls,
            message.stop_reason,
            _usage(message.usage),
            model=message.model,
            answer_id=message.id,
        )

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        """The message streamed: text and ``input_json`` deltas, then the whole of it."""
        try:
            events = await self._client.messages.create(
                **_parameters(request), stream=True, timeout=request.timeout
            )
            async with events:
                text: list[str] = []
                tools: dict[int, list[str]] = {}  # block index: [id, name, json pieces...]
                usage = Usage()
                stop_reason: str | None = None
                model, answer_id = request.model, ""
                async for event in events:
                    if event.type == "message_start":
                        model, answer_id = event.message.model, event.message.id
                        usage = _usage(event.message.usage)
                    elif event.type == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tools[event.index] = [block.id, block.name]
                            if request.response_schema is None:
                                yield ToolCallDelta(len(tools) - 1, block.id, block.name)
                    elif event.type == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta":
                            text.append(delta.text)
                            yield TextDelta(delta.text)
                        elif delta.type == "input_json_delta" and event.index in tools:
                            tools[event.index].append(delta.partial_json)
                            if request.response_schema is not None:
                                yield TextDelta(delta.partial_json)
                            else:
                                position = list(tools).index(event.index)
                                yield ToolCallDelta(position, arguments=delta.partial_json)
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        usage = Usage(
                            input_tokens=usage.input_tokens,
                            output_tokens=event.usage.output_tokens or usage.output_tokens,
                            cached_tokens=usage.cached_tokens,
                        )
        except (anthropic.APIError, httpx2.TransportError) as exc:
            raise _translate(exc) from exc
        calls = [
            ToolCall(slot[0], slot[1], parse_arguments("".join(slot[2:])))
            for _, slot in sorted(tools.items())
        ]
        yield _response(request, text, calls, stop_reason, usage, model=model, answer_id=answer_id)

    async def aclose(self) -> None:
        """Close the SDK's connections."""
        await self._client.close()


def _response(
    request: ProviderRequest,
    text: list[str],
    calls: list[ToolCall],
    stop_reason: str | None,
    usage: Usage,
    *,
    model: str,
    answer_id: str,
) -> ChatResponse:
    finish = _FINISH_REASONS.get(stop_reason, "stop")
    if request.response_schema is not None:
        # The forced tool call is the structured answer: hand it over as its JSON text.
        name = request.response_schema[0]
        answer = next((call for call in calls if call.name == name), None)
        if answer is not None:
            text, calls, finish = [json.dumps(answer.arguments)], [], "stop"
    return ChatResponse(
        text="".join(text),
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=usage,
        provider=AnthropicProvider.name,
        model=model,
        id=answer_id,
    )


def _parameters(request: ProviderRequest) -> dict[str, Any]:
    system = "\n\n".join(m.text for m in request.messages if m.role == "system")
    parameters: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": _messages(request.messages),
    }
    if system:
        parameters["system"] = system
    if request.temperature is not None:
        parameters["temperature"] = request.temperature
    if request.stop:
        parameters["stop_sequences"] = list(request.stop)
    tools = [
        {"name": spec.name, "description": spec.description, "input_schema": dict(spec.parameters)}
        for spec in request.tools
    ]
    if request.response_schema is not None:
        name, schema = request.response_schema
        tools.append(
            {
                "name": name,
                "description": "Give the answer in this shape.",
                "input_schema": dict(schema),
            }
        )
        parameters["tool_choice"] = {"type": "tool", "name": name}
    elif request.tool_choice == "required":
        parameters["tool_choice"] = {"type": "any"}
    elif request.tool_choice in ("auto", "none"):
        parameters["tool_choice"] = {"type": request.tool_choice}
    elif request.tool_choice:
        parameters["tool_choice"] = {"type": "tool", "name": request.tool_choice}
    if tools:
        parameters["tools"] = tools
    return parameters


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text}
        ]
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            if part.url is not None:
                blocks.append({"type": "image", "source": {"type": "url", "url": part.url}})
            else:
                encoded = part.data_url.split(",", 1)[1]
                blocks.append(
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": part.media_type,
                            "data": encoded,
                        },
                    }
                )
        elif part.text:
            blocks.append({"type": "text", "text": part.text})
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        for call in message.tool_calls
    )
    return blocks


def _usage(usage: Any) -> Usage:
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=cache_read,
    )


# Error types of ``event: error`` inside a stream (the HTTP status was already 200).
_STREAM_ERROR_STATUS = {
    "overloaded_error": 529,
    "api_error": 500,
    "rate_limit_error": 429,
    "timeout_error": 504,
}


def _translate(exc: anthropic.APIError | httpx2.TransportError) -> AIProviderError:
    if isinstance(exc, httpx2.TransportError):
        # SDK 2.x lets a connection cut mid-stream through unwrapped.
        return connection_error(AnthropicProvider.name, str(exc) or type(exc).__name__)
    if isinstance(exc, anthropic.APITimeoutError):
        return timeout_error(AnthropicProvider.name)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:  # an error event inside the stream
            status = _STREAM_ERROR_STATUS.get(str(exc.type), 400)
        return status_error(AnthropicProvider.name, status, exc.message, exc.response.headers)
    if isinstance(exc, anthropic.APIConnectionError):
        return connection_error(AnthropicProvider.name, exc.message)
    return AIProviderError(exc.message, provider=AnthropicProvider.name)
