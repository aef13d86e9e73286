"""Typed use of the local AI servers; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from omnistack_core.testing import AIRequest, LocalAnthropic, LocalOpenAI, ToolCallScript


def script(openai: LocalOpenAI, anthropic: LocalAnthropic) -> list[AIRequest]:
    openai.reply("Paris.", usage={"prompt_tokens": 12}, chunk_size=2, chunk_delay=0.01)
    openai.reply(tool_calls=[ToolCallScript("get_weather", {"city": "Paris"}, id="call_1")])
    anthropic.fail(529, retry_after=0.1, times=2)
    anthropic.fail(400, message="Bad.", type="invalid_request_error")
    anthropic.fail_mid_stream(after_chunks=3)
    return [request for request in openai.requests if request.streamed and request.status == 200]


def observe(server: LocalOpenAI | LocalAnthropic) -> tuple[str, str, int, bool]:
    left: bool = server.wait_for_disconnect(timeout=1.0, count=2)
    pending: int = server.queued + server.disconnects + server.count_tokens("Hello, world.")
    return server.url, server.api_key, pending, left
