"""Provider-neutral chat types: messages, requests, responses, stream events and usage.

A request names its model as ``"<provider>:<model>"`` (``openai:gpt-4o-mini``,
``anthropic:claude-haiku-4-5``); everything else means the same whatever the provider. How
a provider wants it said (Anthropic's separate system prompt, its required ``max_tokens``, its
content blocks and stop reasons) is the provider adapter's business.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
"""Why the model stopped: done (or a stop sequence), out of tokens, it wants tools called, or
its output was withheld."""


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text in a message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image in a user message: a URL, or bytes with their media type.

    Attributes:
        url: An ``https://`` URL the provider fetches, or None when ``data`` is given.
        data: The image's bytes, sent inline.
        media_type: ``image/png``, ``image/jpeg``, ``image/gif`` or ``image/webp``.
    """

    url: str | None = None
    data: bytes | None = None
    media_type: str = "image/png"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image is a url or data, not both or neither")

    @property
    def data_url(self) -> str:
        """The image as a URL: its own, or a ``data:`` URL of its bytes."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type};base64,{base64.b64encode(self.data or b'').decode()}"


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asking for a tool to be called.

    Attributes:
        id: The call's id, echoed in the tool's result message.
        name: The tool's name.
        arguments: The arguments, parsed from the model's JSON.
    """

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation.

    Build them with :meth:`system`, :meth:`user`, :meth:`assistant` and :meth:`tool_result`.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: Text, or parts (text and images, in user messages).
        tool_calls: The tools an assistant message asked for.
        tool_call_id: The call a ``tool`` message answers.
    """

    role: Role
    content: str | Sequence[Part] = ""
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None

    @classmethod
    def system(cls, text: str) -> Message:
        """Instructions for the model."""
        return cls("system", text)

    @classmethod
    def user(cls, content: str | Sequence[Part]) -> Message:
        """What the user says (text, or text and images)."""
        return cls("user", content)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        """What the model said before (for multi-turn conversations)."""
        return cls("assistant", text, tool_calls=tuple(tool_calls))

    @classmethod
    def tool_result(cls, call: ToolCall | str, content: str) -> Message:
        """A tool's answer to ``call``."""
        call_id = call if isinstance(call, str) else call.id
        return cls("tool", content, tool_call_id=call_id)

    @property
    def text(self) -> str:
        """The message's text parts, joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def parts(self) -> tuple[Part, ...]:
        """The content as parts (a string is one text part; empty text is none)."""
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return tuple(self.content)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call, described to it by a JSON schema.

    Build one from a function or a pydantic model with :func:`~omnistack_core.ai.tool`.

    Attributes:
        name: The name the model calls it by.
        description: What it does, for the model.
        parameters: The JSON schema of its arguments (an object).
    """

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat call.

    Attributes:
        messages: The conversation so far.
        model: ``"<provider>:<model>"``: ``openai:gpt-4o-mini``, ``anthropic:claude-haiku-4-5``;
            ``AI_DEFAULT_MODEL`` when None.
        temperature: Sampling temperature; the provider's default when None.
        max_tokens: The most tokens the answer may have; ``AI_DEFAULT_MAX_TOKENS`` when None
            (Anthropic requires a value; OpenAI gets one too, so costs stay bounded).
        stop: Sequences that end the answer.
        tools: Tools the model may call.
        tool_choice: ``auto`` (the default with tools), ``required``, ``none``, or a tool name.
        timeout: Seconds the call may take (each attempt); ``AI_TIMEOUT`` when None.
        fallbacks: Models to try, in order, when this one fails with a rate limit, an
            overload, a server error or a timeout; ``AI_FALLBACK_MODELS`` when None.
        user_id: Whose call it is: usage is recorded and quotas applied per user.
    """

    messages: Sequence[Message]
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: Sequence[str] = ()
    tools: Sequence[ToolSpec] = ()
    tool_choice: str | None = None
    timeout: float | None = None
    fallbacks: Sequence[str] | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call used.

    Attributes:
        input_tokens: Tokens read, cached ones included (Anthropic's cache reads and writes
            are added to its ``input_tokens`` so both providers count the same way).
        output_tokens: Tokens written.
        cached_tokens: Input tokens read from the provider's prompt cache.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input and output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A model's answer.

    Attributes:
        text: What it said.
        tool_calls: The tools it wants called (``finish_reason == "tool_calls"``).
        finish_reason: Why it stopped.
        usage: Tokens used.
        provider: ``openai`` or ``anthropic``: who answered (a fallback, maybe).
        model: The model that answered, as the provider named it.
        latency_ms: Milliseconds from the request to the last byte.
        cost: Estimated cost in US dollars from the price table; None for a model the table
            does not know.
        id: The provider's id of the answer.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    provider: str
    model: str
    latency_ms: float = 0.0
    cost: float | None = None
    id: str = ""

    def message(self) -> Message:
        """The answer as an assistant message, to continue the conversation."""
        return Message.assistant(self.text, self.tool_calls)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text, as it streams."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call, as it streams: the first has its id and name.

    Attributes:
        index: Which of the answer's tool calls this belongs to.
        id: The call's id (first delta only).
        name: The tool's name (first delta only).
        arguments: A piece of the arguments' JSON.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


StreamEvent = TextDelta | ToolCallDelta | ChatResponse
"""What :meth:`~omnistack_core.ai.AIClient.stream` yields: deltas, then one final
:class:`ChatResponse` with the whole text, the tool calls and the usage."""


@dataclass(slots=True)
class ProviderRequest:
    """A request as one provider receives it, every default applied.

    Its model has no provider prefix.
    """

    model: str
    messages: Sequence[Message]
    max_tokens: int
    timeout: float
    temperature: float | None = None
    stop: Sequence[str] = ()
    tools: Sequence[ToolSpec] = ()
    tool_choice: str | None = None
    response_schema: tuple[str, Mapping[str, Any]] | None = None
    """Structured output: a name and the JSON schema the answer must follow."""
