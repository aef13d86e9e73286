"""Server-Sent Events from a chat stream, for FastAPI routes.

Events: ``delta`` (``{"text": …}``) for each piece of text, ``tool_call`` for each piece of a
tool call, ``done`` with the whole answer and its usage, or ``error`` (a problem+json body)
when the stream fails after it started. When the client disconnects, Starlette cancels the
response; the cancellation reaches the provider's stream, which closes its connection, so
nobody pays for tokens nobody reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.responses import StreamingResponse

from omnistack_core.ai.errors import AIError
from omnistack_core.ai.types import ChatResponse, StreamEvent, TextDelta, ToolCallDelta
from omnistack_core.request_context import current_request_id

logger = logging.getLogger("omnistack.ai")

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer as JSON, or as Server-Sent Events when it is streamed.",
        "content": {
            "text/event-stream": {
                # OpenAPI 3.1 has the schema of an event stream describe each event.
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"enum": ["delta", "tool_call", "done", "error"]},
                        "data": {
                            "type": "string",
                            "description": "JSON: the text, the tool call, the whole answer "
                            "(done) or a problem+json body (error).",
                        },
                    },
                }
            }
        },
    }
}
"""FastAPI ``responses=`` for a route that may answer with :func:`sse_response`: the
OpenAPI document then lists ``text/event-stream`` beside the route's JSON."""


async def sse_response(events: AsyncGenerator[StreamEvent, None]) -> StreamingResponse:
    """A ``text/event-stream`` response relaying ``events`` (from ``AIClient.stream``).

    The first event is awaited before the response starts, so what fails before it (the
    quota, every model of the chain) raises as usual and becomes a problem+json answer
    (429, 503…). A failure after it arrives as an ``error`` event: the status is sent.
    """
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return StreamingResponse(
        _encoded(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _encoded(
    first: StreamEvent, events: AsyncGenerator[StreamEvent, None]
) -> AsyncIterator[bytes]:
    async with aclosing(events) as stream:
        yield _frame(*_describe(first))
        try:
            async for event in stream:
                yield _frame(*_describe(event))
        except AIError as exc:
            logger.warning("A streamed AI answer failed: %s", exc)
            problem = {
                "type": "about:blank",
                "title": "AI stream failed",
                "status": 502,
                "detail": "The answer stopped before it was complete.",
                "request_id": current_request_id(),
            }
            yield _frame("error", problem)


def _describe(event: StreamEvent) -> tuple[str, dict[str, Any]]:
    if isinstance(event, TextDelta):
        return "delta", {"text": event.text}
    if isinstance(event, ToolCallDelta):
        return "tool_call", {
            "index": event.index,
            "id": event.id,
            "name": event.name,
            "arguments": event.arguments,
        }
    return "done", response_body(event)


def response_body(response: ChatResponse) -> dict[str, Any]:
    """A :class:`ChatResponse` as JSON: what ``done`` events and JSON routes send."""
    return {
        "text": response.text,
        "tool_calls": [
            {"id": call.id, "name": call.name, "arguments": dict(call.arguments)}
            for call in response.tool_calls
        ],
        "finish_reason": response.finish_reason,
        "provider": response.provider,
        "model": response.model,
        "usage": {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "cached_tokens": response.usage.cached_tokens,
        },
        "cost": response.cost,
        "latency_ms": round(response.latency_ms, 1),
    }


def _frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
