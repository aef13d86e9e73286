"""OpenAI's Chat Completions API (and OpenAI-compatible gateways), through the official SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import openai
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
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIProvider(ChatProvider):
    """Chat Completions through ``openai.AsyncOpenAI``.

    Args:
        api_key: ``OPENAI_API_KEY``.
        base_url: ``OPENAI_BASE_URL``: a gateway, a proxy, a local server; OpenAI's when None.
    """

    name: ClassVar[str] = "openai"

    def __init__(self, api_key: SecretStr, *, base_url: str | None = None) -> None:
        # The client retries and falls back itself, with the request's own budget.
        self._client = openai.AsyncOpenAI(
            api_key=api_key.get_secret_value(), base_url=base_url, max_retries=0
        )

    async def chat(self, request: ProviderRequest) -> ChatResponse:
        """One completion."""
        try:
            completion = await self._client.chat.completions.create(
                **_parameters(request), timeout=request.timeout
            )
        except openai.APIError as exc:
            raise _translate(exc) from exc
        choice = completion.choices[0]
        message = choice.message
        calls = tuple(
            ToolCall(call.id, call.function.name, parse_arguments(call.function.arguments))
            for call in message.tool_calls or ()
            if call.type == "function"
        )
        return ChatResponse(
            text=message.content or "",
            tool_calls=calls,
            finish_reason=_FINISH_REASONS.get(choice.finish_reason, "stop"),
            usage=_usage(completion.usage),
            provider=self.name,
            model=completion.model,
            id=completion.id,
        )

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[StreamEvent, None]:
        """The completion streamed, usage included (``stream_options.include_usage``)."""
        parameters = _parameters(request)
        try:
            chunks = await self._client.chat.completions.create(
                **parameters,
                stream=True,
                stream_options={"include_usage": True},
                timeout=request.timeout,
            )
            async with chunks:
                text: list[str] = []
                calls: dict[int, list[str]] = {}  # index: [id, name, arguments...]
                finish: FinishReason = "stop"
                usage = Usage()
                model, answer_id = request.model, ""
                async for chunk in chunks:
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    if not chunk.choices:
                        continue
                    model, answer_id = chunk.model or model, chunk.id or answer_id
                    choice = chunk.choices[0]
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for call in delta.tool_calls or ():
                        function = call.function
                        name = function.name if function else None
                        arguments = (function.arguments if function else None) or ""
                        slot = calls.setdefault(call.index, ["", ""])
                        slot[0] = call.id or slot[0]
                        slot[1] = name or slot[1]
                        slot.append(arguments)
                        yield ToolCallDelta(call.index, call.id, name, arguments)
                    if choice.finish_reason:
                        finish = _FINISH_REASONS.get(choice.finish_reason, "stop")
        except openai.APIError as exc:
            raise _translate(exc) from exc
        yield ChatResponse(
            text="".join(text),
            tool_calls=tuple(
                ToolCall(slot[0], slot[1], parse_arguments("".join(slot[2:])))
                for _, slot in sorted(calls.items())
            ),
            finish_reason=finish,
            usage=usage,
            provider=self.name,
            model=model,
            id=answer_id,
        )

    async def aclose(self) -> None:
        """Close the SDK's connections."""
        await self._client.close()


def _parameters(request: ProviderRequest) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(message) for message in request.messages],
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        parameters["temperature"] = request.temperature
    if request.stop:
        parameters["stop"] = list(request.stop)
    if request.tools:
        parameters["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": dict(spec.parameters),
                },
            }
            for spec in request.tools
        ]
        if request.tool_choice in ("auto", "required", "none"):
            parameters["tool_choice"] = request.tool_choice
        elif request.tool_choice:
            parameters["tool_choice"] = {
                "type": "function",
                "function": {"name": request.tool_choice},
            }
    if request.response_schema is not None:
        name, schema = request.response_schema
        parameters["response_format"] = {
            "type": "json_schema",
            # Not strict: strict mode accepts only a subset of JSON Schema (every property
            # required, no defaults); the client validates and repairs instead.
            "json_schema": {"name": name, "schema": dict(schema), "strict": False},
        }
    return parameters


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if message.role == "assistant":
        payload: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if message.tool_calls:
            payload["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
        return payload
    if message.role == "system" or isinstance(message.content, str):
        return {"role": message.role, "content": message.text}
    return {"role": message.role, "content": _parts(message)}


def _parts(message: Message) -> list[dict[str, Any]]:
    return [
        {"type": "image_url", "image_url": {"url": part.data_url}}
        if isinstance(part, ImagePart)
        else {"type": "text", "text": part.text}
        for part in message.parts
    ]


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def _translate(exc: openai.APIError) -> AIProviderError:
    if isinstance(exc, openai.APITimeoutError):
        return timeout_error(OpenAIProvider.name)
    if isinstance(exc, openai.APIStatusError):
        return status_error(OpenAIProvider.name, exc.status_code, exc.message, exc.response.headers)
    if isinstance(exc, openai.APIConnectionError):
        return connection_error(OpenAIProvider.name, exc.message)
    # A stream's error event, or an answer the SDK could not read.
    return AIProviderError(exc.message, provider=OpenAIProvider.name)
