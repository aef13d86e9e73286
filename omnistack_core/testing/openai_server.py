"""A local OpenAI: the Chat Completions API on 127.0.0.1, speaking OpenAI's wire format, for tests.

It stands in for ``api.openai.com`` in tests, ours and users' own: OpenAI's official SDK,
pointed at it (``base_url=server.url``), gets the answers OpenAI gives, over real HTTP.

* ``POST /v1/chat/completions`` with ``Authorization: Bearer <key>``; a missing or wrong key
  is a 401 (the wrong key masked as OpenAI masks it).
* Requests are checked as OpenAI checks them: ``model`` and a non-empty ``messages`` are
  required, roles are ``system``, ``developer``, ``user``, ``assistant``, ``tool``,
  ``function``; a ``tool`` message answers a call of the assistant message before it, and an
  assistant's tool calls are each answered; ``stream_options`` only with ``stream``;
  ``response_format`` is ``text``, ``json_object`` (the messages must say "json") or
  ``json_schema`` (with a ``name``). Errors are
  ``{"error": {"message", "type", "param", "code"}}`` with OpenAI's wording.
* Answers are ``chat.completion`` objects: ``chatcmpl-…`` ids, one choice whose message has
  ``content`` (null when it only calls tools), ``refusal: null``, ``annotations`` and
  ``tool_calls`` (``call_…``, ``type: "function"``, arguments as a JSON string),
  ``finish_reason`` (``stop``, ``tool_calls``, ``length`` when ``max_completion_tokens`` or
  ``max_tokens`` cut the text), ``usage`` with its details, ``system_fingerprint``.
* Streams (``stream: true``) are ``data: {chat.completion.chunk}`` events: the first delta
  has the role, then content deltas, then per tool call one delta with its ``id`` and name
  and more with pieces of its arguments, then a chunk with the ``finish_reason``; with
  ``stream_options.include_usage`` every chunk has ``usage: null`` and one more chunk with
  no choices carries the usage; then ``data: [DONE]``. Each chunk has an ``obfuscation``
  string unless ``stream_options.include_obfuscation`` is false, as OpenAI sends.
* Every answer carries ``x-request-id``, ``openai-processing-ms``, ``openai-version`` and
  the ``x-ratelimit-*`` headers; a 429 also ``retry-after``.
* A stream broken by :meth:`~LocalOpenAI.fail_mid_stream` sends
  ``data: {"error": {... "type": "server_error"}}`` and ends without ``[DONE]``, which the SDK
  raises as :class:`openai.APIError`.

Answers are scripted with :meth:`~LocalOpenAI.reply` and :meth:`~LocalOpenAI.fail`; see
:mod:`omnistack_core.testing.ai_server` for what they share with :class:`LocalAnthropic`.

    with LocalOpenAI() as server:
        server.reply("Paris.")
        client = openai.AsyncOpenAI(api_key=server.api_key, base_url=server.url)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from omnistack_core.testing.ai_server import (
    ALPHANUMERIC,
    AIRequest,
    Answer,
    APIRefusal,
    Failure,
    LocalAIServer,
    StreamEvent,
    ToolCall,
    ToolCallScript,
    message_text,
    random_string,
    seconds_header,
    sse,
)

__all__ = ["AIRequest", "LocalOpenAI", "ToolCallScript"]

OPENAI_VERSION = "2020-10-01"
_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_REQUEST_LIMIT = 10_000
_TOKEN_LIMIT = 30_000_000
_HEX = "0123456789abcdef"
_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted "
    "for a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)
# The type, code and message OpenAI answers for each status, when fail() names none.
_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        (
            "Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        ),
    ),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        (
            "Rate limit reached for {model} in organization {organization} on requests per "
            "min (RPM): Limit {limit}, Used {limit}, Requested 1. Please try again in {retry}s. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        ),
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class LocalOpenAI(LocalAIServer):
    """OpenAI's Chat Completions API on a free port of 127.0.0.1.

    Args:
        api_key: The key requests must carry; a random ``sk-test-…`` when None.

    Attributes:
        api_key: The key requests must carry.
        requests: Every request received, oldest first.
        disconnects: Answers whose client went away before they were fully written.
        organization: The ``openai-organization`` answered.
    """

    key_prefix = "sk-test-"
    endpoint = "/v1/chat/completions"
    base_path = "/v1"
    usage_keys = frozenset(
        {"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"}
    )
    token_names = ("prompt_tokens", "completion_tokens")
    max_tokens_fields = ("max_completion_tokens", "max_tokens")
    id_formats: ClassVar[Mapping[str, tuple[str, int, str]]] = {
        "answer": ("chatcmpl-", 29, ALPHANUMERIC),
        "tool_call": ("call_", 24, ALPHANUMERIC),
        "request": ("req_", 32, _HEX),
    }

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.organization = "org-" + random_string(24)
        self._fingerprint = "fp_" + random_string(10, _HEX)

    # Requests -------------------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _error(401, _MISSING_KEY)
        if key.strip() != self.api_key:
            message = _DEFAULT_ERRORS[401][2].format(key=_masked(key.strip()))
            raise _error(401, message, code="invalid_api_key")

    def _validate(self, body: dict[str, Any]) -> None:
        if not body.get("model"):
            raise _error(400, "you must provide a model parameter")
        if "messages" not in body:
            raise _missing("messages")
        messages = body["messages"]
        if not isinstance(messages, list):
            raise _invalid_type("messages", "an array", messages)
        if not messages:
            raise _error(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        _check_messages(messages)
        if "stream_options" in body and body.get("stream") is not True:
            raise _error(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        _check_response_format(body.get("response_format"), messages)

    def _invalid_json(self) -> APIRefusal:
        return _error(400, _INVALID_JSON)

    def _not_found(self, method: str, path: str) -> APIRefusal:
        return _error(404, f"Invalid URL ({method} {path})")

    def _failure(self, failure: Failure, body: dict[str, Any]) -> APIRefusal:
        status = failure.status
        kind = "server_error" if status >= 500 else "invalid_request_error"
        error_type, code, message = _DEFAULT_ERRORS.get(status, (kind, None, f"Error {status}."))
        retry = seconds_header(failure.retry_after or 0)
        text = failure.message or message.format(
            key=_masked(self.api_key),
            model=body.get("model"),
            organization=self.organization,
            limit=_REQUEST_LIMIT,
            retry=retry,
        )
        headers = {}
        if status == 429:
            headers = {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry}s",
            }
        return _error(
            status,
            text,
            type=failure.type or error_type,
            code=failure.code or code,
            headers=headers,
        )

    # Answers --------------------------------------------------------------------------------

    def _response_headers(self, request_id: str, received_at: float) -> dict[str, str]:
        return {
            "x-request-id": request_id,
            "openai-organization": self.organization,
            "openai-processing-ms": str(int((time.monotonic() - received_at) * 1000)),
            "openai-version": OPENAI_VERSION,
            "x-ratelimit-limit-requests": str(_REQUEST_LIMIT),
            "x-ratelimit-limit-tokens": str(_TOKEN_LIMIT),
            "x-ratelimit-remaining-requests": str(_REQUEST_LIMIT - 1),
            "x-ratelimit-remaining-tokens": str(_TOKEN_LIMIT - 1),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "0s",
        }

    def _completion(self, answer: Answer, body: dict[str, Any]) -> dict[str, Any]:
        del body  # the answer already holds what the request asked
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.text or not answer.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in answer.tool_calls
            ]
        return {
            "id": answer.id,
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish(answer),
                }
            ],
            "usage": _usage(answer),
            "service_tier": "default",
            "system_fingerprint": self._fingerprint,
        }

    def _stream(self, answer: Answer, body: dict[str, Any]) -> Iterator[StreamEvent]:
        options = body.get("stream_options") or {}
        with_usage = options.get("include_usage") is True
        obfuscated = options.get("include_obfuscation") is not False

        def chunk(
            delta: dict[str, Any], finish: str | None = None, *, lead: bool = False
        ) -> StreamEvent:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            data = self._chunk(answer, [choice], with_usage=with_usage, obfuscated=obfuscated)
            return StreamEvent(
                sse(data), "lead" if lead else "delta" if finish is None else "other"
            )

        only_tools = bool(answer.tool_calls) and not answer.text
        first: dict[str, Any] = {"role": "assistant", "content": None if only_tools else ""}
        if only_tools:
            first["tool_calls"] = [_tool_call_head(0, answer.tool_calls[0])]
        first["refusal"] = None
        yield chunk(first, lead=True)
        for piece in answer.pieces(answer.text):
            yield chunk({"content": piece})
        for index, call in enumerate(answer.tool_calls):
            if index or not only_tools:
                yield chunk({"tool_calls": [_tool_call_head(index, call)]})
            for piece in answer.pieces(call.arguments):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, _finish(answer))
        if with_usage:
            data = self._chunk(answer, [], with_usage=False, obfuscated=obfuscated)
            yield StreamEvent(sse({**data, "usage": _usage(answer)}), "other")
        yield StreamEvent(sse("[DONE]"), "other")

    def _chunk(
        self, answer: Answer, choices: list[dict[str, Any]], *, with_usage: bool, obfuscated: bool
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.model,
            "service_tier": "default",
            "system_fingerprint": self._fingerprint,
            "choices": choices,
        }
        if with_usage:
            data["usage"] = None
        if obfuscated:
            data["obfuscation"] = random_string(8)
        return data

    def _stream_error(self, request_id: str) -> bytes:
        del request_id  # OpenAI's stream errors carry none
        return sse(_error(500, _DEFAULT_ERRORS[500][2], type="server_error").body)


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",  # noqa: A002 - OpenAI's own field name
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> APIRefusal:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return APIRefusal(status, body, headers)


def _missing(param: str) -> APIRefusal:
    return _error(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _invalid_type(param: str, expected: str, value: object) -> APIRefusal:
    names = {str: "a string", int: "an integer", float: "a decimal", bool: "a boolean"}
    got = (
        "an object" if isinstance(value, dict) else "an array" if isinstance(value, list) else None
    )
    got = got or names.get(type(value), "null")
    return _error(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def _check_messages(messages: list[Any]) -> None:
    unanswered: dict[str, int] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in _ROLES:
            listed = ", ".join(f"'{name}'" for name in _ROLES[:-1]) + f", and '{_ROLES[-1]}'"
            raise _error(
                400,
                f"Invalid value: '{role}'. Supported values are: {listed}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                raise _missing(f"{where}.tool_call_id")
            if call_id not in unanswered:
                raise _error(
                    400,
                    # OpenAI's own spelling.
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            del unanswered[call_id]
            continue
        if unanswered:
            raise _unanswered(unanswered)
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if "content" not in message and not calls:
                raise _missing(f"{where}.content")
            unanswered = {str(call.get("id")): index for call in calls if isinstance(call, dict)}
        elif "content" not in message:
            raise _missing(f"{where}.content")
    if unanswered:
        raise _unanswered(unanswered)


def _unanswered(unanswered: Mapping[str, int]) -> APIRefusal:
    index = next(iter(unanswered.values()))
    return _error(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(unanswered),
        param=f"messages.[{index}].role",
    )


def _check_response_format(response_format: object, messages: list[Any]) -> None:
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        raise _invalid_type("response_format", "an object", response_format)
    kind = response_format.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _error(
            400,
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
            "'json_schema'.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict):
            raise _missing("response_format.json_schema")
        if not schema.get("name"):
            raise _missing("response_format.json_schema.name")
    if kind == "json_object" and "json" not in message_text(messages).lower():
        raise _error(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of "
            "type 'json_object'.",
            param="messages",
        )


def _tool_call_head(index: int, call: ToolCall) -> dict[str, Any]:
    return {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }


def _finish(answer: Answer) -> str:
    return answer.reason(natural="stop", tools="tool_calls", cut="length")


def _usage(answer: Answer) -> dict[str, Any]:
    counts = answer.counts
    prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": counts.get("total_tokens", prompt + completion),
        "prompt_tokens_details": {
            "cached_tokens": counts.get("cached_tokens", 0),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": counts.get("reasoning_tokens", 0),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _masked(key: str) -> str:
    # OpenAI shows the key's first 3 characters... and last 4.
    shown = key[-4:] if len(key) > 8 else ""
    return key[:3] + "*" * max(len(key) - 3 - len(shown), 0) + shown
