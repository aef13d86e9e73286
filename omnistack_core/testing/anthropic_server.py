"""A local Anthropic: the Messages API on 127.0.0.1, speaking Anthropic's wire format, for tests.

It stands in for ``api.anthropic.com`` in tests, ours and users' own: Anthropic's official
SDK, pointed at it (``base_url=server.url``), gets the answers Anthropic gives, over real
HTTP.

* ``POST /v1/messages`` with the key in ``x-api-key`` (or ``Authorization: Bearer``, which is
  how the SDK sends it since 2.x) and an ``anthropic-version`` header: a missing or wrong key
  is a 401 ``authentication_error``, a missing version a 400.
* Requests are checked as Anthropic checks them: ``model``, ``max_tokens`` (an integer, at
  least 1) and a non-empty ``messages`` are required; roles are ``user`` and ``assistant``
  (a ``system`` message is refused with Anthropic's pointer to the top-level ``system``,
  which is a string or a list of text blocks); content is a non-empty string or list of
  blocks (``text``, ``image``, ``document``, ``tool_use``, ``tool_result``, ``thinking``...),
  each with its required fields; every ``tool_use`` is answered by a ``tool_result`` in the
  next message, and every ``tool_result`` answers a ``tool_use`` of the message before.
  Errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}``.
* Answers are ``message`` objects: ``msg_…`` ids, ``content`` of a ``text`` block and
  ``tool_use`` blocks (``toolu_…``, ``input`` as an object), ``stop_reason`` (``end_turn``,
  ``tool_use``, ``max_tokens`` when ``max_tokens`` cut the text), ``stop_sequence`` and
  ``usage`` with the cache counts.
* Streams (``stream: true``) are the named events the SDK's accumulator expects:
  ``message_start`` (the message, empty, with the input tokens), per block
  ``content_block_start``, ``content_block_delta`` (``text_delta``; ``input_json_delta`` with
  ``partial_json`` for a tool's input) and ``content_block_stop``, a ``ping`` after the first
  block starts, then ``message_delta`` (``stop_reason``, ``usage.output_tokens``) and
  ``message_stop``.
* Every answer carries ``request-id``, ``anthropic-organization-id`` and the
  ``anthropic-ratelimit-*`` headers; a 429 also ``retry-after``.
* A stream broken by :meth:`~LocalAnthropic.fail_mid_stream` sends ``event: error`` with an
  ``overloaded_error``, as Anthropic does when it runs out of capacity mid-answer.

Answers are scripted with :meth:`~LocalAnthropic.reply` and :meth:`~LocalAnthropic.fail`;
see :mod:`omnistack_core.testing.ai_server` for what they share with :class:`LocalOpenAI`.

    with LocalAnthropic() as server:
        server.reply("Paris.")
        client = anthropic.AsyncAnthropic(api_key=server.api_key, base_url=server.url)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from omnistack_core.testing.ai_server import (
    AIRequest,
    Answer,
    APIRefusal,
    Failure,
    LocalAIServer,
    StreamEvent,
    ToolCallScript,
    sse,
)

__all__ = ["AIRequest", "LocalAnthropic", "ToolCallScript"]

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_REQUEST_LIMIT = 4_000
_TOKEN_LIMIT = 2_000_000
_BLOCKS = (
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
)
# The fields each block must have, beyond its type.
_REQUIRED = {
    "text": ("text",),
    "image": ("source",),
    "document": ("source",),
    "tool_use": ("id", "name", "input"),
    "tool_result": ("tool_use_id",),
    "thinking": ("thinking", "signature"),
    "redacted_thinking": ("data",),
}
# The type and message Anthropic answers for each status, when fail() names none.
_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: (
        "billing_error",
        (
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
            "Billing to upgrade or purchase credits."
        ),
    ),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        (
            "This request would exceed the rate limit for your organization ({organization}) "
            "of {limit} requests per minute. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
            "current usage. Please reduce the prompt length or the maximum tokens requested, "
            "or try again later. You may also contact sales at "
            "https://www.anthropic.com/contact-sales to discuss your options for a rate limit "
            "increase."
        ),
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


class LocalAnthropic(LocalAIServer):
    """Anthropic's Messages API on a free port of 127.0.0.1.

    Args:
        api_key: The key requests must carry; a random ``sk-ant-test-…`` when None.

    Attributes:
        api_key: The key requests must carry.
        requests: Every request received, oldest first.
        disconnects: Answers whose client went away before they were fully written.
        organization: The ``anthropic-organization-id`` answered.
    """

    key_prefix = "sk-ant-test-"
    endpoint = "/v1/messages"
    usage_keys = frozenset(
        {
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        }
    )

    token_names = ("input_tokens", "output_tokens")
    max_tokens_fields = ("max_tokens",)
    id_formats: ClassVar[Mapping[str, tuple[str, int, str]]] = {
        "answer": ("msg_01", 22, _BASE58),
        "tool_call": ("toolu_01", 22, _BASE58),
        "request": ("req_011C", 20, _BASE58),
    }

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.organization = str(uuid.uuid4())

    # Requests -------------------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = headers.get("x-api-key") or (token.strip() if scheme.lower() == "bearer" else "")
        if not key:
            raise _error(401, "authentication_error", "x-api-key header is required")
        if key != self.api_key:
            raise _error(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            raise _invalid("anthropic-version: header is required")

    def _validate(self, body: dict[str, Any]) -> None:
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                raise _invalid(f"{name}: Field required")
        if not isinstance(body["model"], str):
            raise _invalid("model: Input should be a valid string")
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise _invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise _invalid("max_tokens: Input should be greater than or equal to 1")
        _check_system(body.get("system"))
        messages = body["messages"]
        if not isinstance(messages, list):
            raise _invalid("messages: Input should be a valid list")
        if not messages:
            raise _invalid("messages: at least one message is required")
        for index, message in enumerate(messages):
            _check_message(index, message, last=index == len(messages) - 1)
        _check_tool_pairs(messages)

    def _invalid_json(self) -> APIRefusal:
        return _invalid("The request body is not valid JSON.")

    def _not_found(self, method: str, path: str) -> APIRefusal:
        del method, path  # Anthropic names neither
        return _error(404, "not_found_error", "Not Found")

    def _failure(self, failure: Failure, body: dict[str, Any]) -> APIRefusal:
        status = failure.status
        kind = "api_error" if status >= 500 else "invalid_request_error"
        error_type, message = _DEFAULT_ERRORS.get(status, (kind, f"Error {status}."))
        text = failure.message or message.format(
            model=body.get("model"), organization=self.organization, limit=_REQUEST_LIMIT
        )
        headers = {}
        if status == 429:
            headers = {
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": _rfc3339(failure.retry_after or 1),
            }
        refusal = _error(status, failure.type or error_type, text, headers=headers)
        if failure.code is not None:
            refusal.body["error"]["details"] = {"error_code": failure.code}
        return refusal

    # Answers --------------------------------------------------------------------------------

    def _response_headers(self, request_id: str, received_at: float) -> dict[str, str]:
        del received_at  # Anthropic reports no processing time
        reset = _rfc3339(1)
        headers = {"request-id": request_id, "anthropic-organization-id": self.organization}
        for kind, limit in (
            ("requests", _REQUEST_LIMIT),
            ("tokens", _TOKEN_LIMIT),
            ("input-tokens", _TOKEN_LIMIT),
            ("output-tokens", _TOKEN_LIMIT // 5),
        ):
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(limit - 1)
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset
        return headers

    def _completion(self, answer: Answer, body: dict[str, Any]) -> dict[str, Any]:
        del body  # the answer already holds what the request asked
        content: list[dict[str, Any]] = []
        if answer.text or not answer.tool_calls:
            content.append({"type": "text", "text": answer.text})
        content.extend(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": json.loads(call.arguments),
            }
            for call in answer.tool_calls
        )
        return {**_message(answer, content, _stop_reason(answer)), "usage": _usage(answer)}

    def _stream(self, answer: Answer, body: dict[str, Any]) -> Iterator[StreamEvent]:
        del body  # the answer already holds what the request asked
        start = {**_message(answer, [], None), "usage": {**_usage(answer), "output_tokens": 1}}
        yield _event({"type": "message_start", "message": start}, "lead")
        blocks: list[tuple[dict[str, Any], str, str]] = []
        if answer.text or not answer.tool_calls:
            blocks.append(({"type": "text", "text": ""}, "text_delta", answer.text))
        blocks.extend(
            (
                {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
                "input_json_delta",
                call.arguments,
            )
            for call in answer.tool_calls
        )
        for index, (block, delta, content) in enumerate(blocks):
            opening: Literal["lead", "other"] = "lead" if index == 0 else "other"
            yield _event(
                {"type": "content_block_start", "index": index, "content_block": block}, opening
            )
            if index == 0:
                yield _event({"type": "ping"}, "lead")
            field = "text" if delta == "text_delta" else "partial_json"
            if delta == "input_json_delta":
                # Anthropic opens every tool input with an empty piece.
                yield _event(_delta(index, delta, field, ""), "other")
            for piece in answer.pieces(content):
                yield _event(_delta(index, delta, field, piece))
            yield _event({"type": "content_block_stop", "index": index}, "other")
        yield _event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(answer), "stop_sequence": None},
                "usage": {"output_tokens": _usage(answer)["output_tokens"]},
            },
            "other",
        )
        yield _event({"type": "message_stop"}, "other")

    def _error_body(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        return {**body, "request_id": request_id}

    def _stream_error(self, request_id: str) -> bytes:
        refusal = _error(529, "overloaded_error", "Overloaded")
        return sse(self._error_body(refusal.body, request_id), "error")


def _error(
    status: int,
    type: str,  # noqa: A002 - Anthropic's own field name
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> APIRefusal:
    body = {"type": "error", "error": {"type": type, "message": message}}
    return APIRefusal(status, body, headers)


def _invalid(message: str) -> APIRefusal:
    return _error(400, "invalid_request_error", message)


def _check_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _invalid("system: Input should be a valid string")
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _invalid(f"system.{index}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str):
            raise _invalid(f"system.{index}.text: Field required")


def _check_message(index: int, message: object, *, last: bool) -> None:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise _invalid(f"{where}: Input should be a valid dictionary")
    for name in ("role", "content"):
        if name not in message:
            raise _invalid(f"{where}.{name}: Field required")
    role = message["role"]
    if role == "system":
        raise _invalid(
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
            'parameter, not "system" as an input message role.'
        )
    if role not in ("user", "assistant"):
        raise _invalid(f"{where}.role: Input should be 'user' or 'assistant'")
    content = message["content"]
    if not isinstance(content, str | list):
        raise _invalid(f"{where}.content: Input should be a valid list")
    if not content and not (last and role == "assistant"):
        raise _invalid(
            f"{where}: all messages must have non-empty content except for the optional final "
            "assistant message"
        )
    for number, block in enumerate(content if isinstance(content, list) else []):
        _check_block(f"{where}.content.{number}", block)


def _check_block(where: str, block: object) -> None:
    if not isinstance(block, dict):
        raise _invalid(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind not in _BLOCKS:
        expected = ", ".join(f"'{name}'" for name in _BLOCKS)
        raise _invalid(
            f"{where}: Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {expected}"
        )
    for name in _REQUIRED.get(kind, ()):
        if name not in block:
            raise _invalid(f"{where}.{kind}.{name}: Field required")


def _check_tool_pairs(messages: list[dict[str, Any]]) -> None:
    asked: list[str] = []
    for index, message in enumerate(messages):
        content = message["content"]
        blocks = content if isinstance(content, list) else []
        answered = {
            block["tool_use_id"]: number
            for number, block in enumerate(blocks)
            if block["type"] == "tool_result"
        }
        for tool_use_id, number in answered.items():
            if tool_use_id not in asked:
                raise _invalid(
                    f"messages.{index}.content.{number}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {tool_use_id}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
        missing = [tool_use_id for tool_use_id in asked if tool_use_id not in answered]
        if missing:
            raise _invalid(
                f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
        asked = [b["id"] for b in blocks if b["type"] == "tool_use"]


def _message(answer: Answer, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
    return {
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
    }


def _delta(index: int, kind: str, field: str, piece: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: piece}}


def _event(data: dict[str, Any], kind: Literal["lead", "delta", "other"] = "delta") -> StreamEvent:
    return StreamEvent(sse(data, str(data["type"])), kind)


def _stop_reason(answer: Answer) -> str:
    return answer.reason(natural="end_turn", tools="tool_use", cut="max_tokens")


def _usage(answer: Answer) -> dict[str, Any]:
    written = answer.counts.get("cache_creation_input_tokens", 0)
    return {
        "input_tokens": answer.counts["input_tokens"],
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": answer.counts.get("cache_read_input_tokens", 0),
        "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
        "output_tokens": answer.counts["output_tokens"],
        "service_tier": "standard",
    }


def _rfc3339(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
