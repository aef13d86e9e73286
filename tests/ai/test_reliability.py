"""Retries, fallbacks and timeouts: what moves on to the next model, and what never does."""

from __future__ import annotations

import time

import pytest

from omnistack_core.ai import (
    AIRateLimitError,
    AIRequestError,
    AIStreamError,
    AITimeoutError,
    ChatRequest,
    ChatResponse,
    Message,
    TextDelta,
)
from tests.ai.ai_clients import MODELS, Providers

HELLO = [Message.user("Hello")]


def chain(first: str, *fallbacks: str, **options: object) -> ChatRequest:
    return ChatRequest(
        messages=HELLO,
        model=MODELS[first],
        fallbacks=[MODELS[name] for name in fallbacks],
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("first", "status", "fallback"),
    [
        ("openai", 500, "anthropic"),
        ("anthropic", 529, "openai"),
        ("openai", 503, "anthropic"),
        ("openai", 429, "anthropic"),
        ("anthropic", 429, "openai"),
    ],
)
async def test_a_failing_provider_falls_back_after_its_retries(
    providers: Providers, first: str, status: int, fallback: str
) -> None:
    providers.server(first).fail(status, times=3, retry_after=0.05 if status == 429 else None)
    providers.server(fallback).reply("From the fallback.")
    client = providers.client(ai_max_retries=2, ai_max_retry_wait=1)

    response = await client.chat(chain(first, fallback))
    await client.aclose()

    assert response.provider == fallback
    assert response.text == "From the fallback."
    assert len(providers.server(first).requests) == 3  # the first try and two retries


async def test_a_rate_limit_is_retried_after_its_retry_after(providers: Providers) -> None:
    providers.openai.fail(429, retry_after=0.3)
    providers.openai.reply("Second time lucky.")
    client = providers.client(ai_max_retries=1)

    started = time.monotonic()
    response = await client.chat(chain("openai", "anthropic"))
    waited = time.monotonic() - started
    await client.aclose()

    assert response.provider == "openai"
    assert response.text == "Second time lucky."
    assert waited >= 0.3
    assert providers.anthropic.requests == []


async def test_a_persistent_rate_limit_falls_back_and_a_long_wait_is_not_waited(
    providers: Providers,
) -> None:
    providers.openai.fail(429, retry_after=600)
    client = providers.client(ai_max_retries=3, ai_max_retry_wait=5)

    started = time.monotonic()
    response = await client.chat(chain("openai", "anthropic"))
    alone = providers.client(ai_max_retries=0)
    providers.openai.fail(429, retry_after=600)
    with pytest.raises(AIRateLimitError) as raised:
        await alone.chat(chain("openai"))
    await client.aclose()
    await alone.aclose()

    assert response.provider == "anthropic"
    assert time.monotonic() - started < 5
    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == "600"


@pytest.mark.parametrize("first", ["openai", "anthropic"])
async def test_a_bad_request_never_falls_back(providers: Providers, first: str) -> None:
    other = "anthropic" if first == "openai" else "openai"
    providers.server(first).fail(400, message="messages: too long")
    client = providers.client(ai_max_retries=2)

    with pytest.raises(AIRequestError) as raised:
        await client.chat(chain(first, other))
    await client.aclose()

    assert raised.value.provider_status == 400
    assert raised.value.status == 502
    assert len(providers.server(first).requests) == 1
    assert providers.server(other).requests == []


@pytest.mark.parametrize("first", ["openai", "anthropic"])
async def test_the_timeout_is_honoured(providers: Providers, first: str) -> None:
    providers.server(first).reply("Too late.", delay=2.0)
    client = providers.client()

    started = time.monotonic()
    with pytest.raises(AITimeoutError):
        await client.chat(chain(first, timeout=0.3))
    elapsed = time.monotonic() - started
    await client.aclose()

    assert elapsed < 1.5


async def test_a_stream_failing_before_its_first_token_falls_back(providers: Providers) -> None:
    providers.anthropic.fail(529)
    providers.openai.reply("Streamed by the fallback.")
    client = providers.client()

    events = [event async for event in client.stream(chain("anthropic", "openai"))]
    await client.aclose()

    final = events[-1]
    assert isinstance(final, ChatResponse)
    assert final.provider == "openai"
    assert final.text == "Streamed by the fallback."


@pytest.mark.parametrize("first", ["openai", "anthropic"])
async def test_a_stream_failing_midway_is_reported_and_not_retried(
    providers: Providers, first: str
) -> None:
    other = "anthropic" if first == "openai" else "openai"
    providers.server(first).reply("One two three four five six seven eight.", chunk_size=4)
    providers.server(first).fail_mid_stream(after_chunks=2)
    client = providers.client(ai_max_retries=2)

    received: list[str] = []

    async def read() -> None:
        async for event in client.stream(chain(first, other)):
            received.extend([event.text] if isinstance(event, TextDelta) else [])

    with pytest.raises(AIStreamError):
        await read()
    await client.aclose()

    assert received
    assert len(providers.server(first).requests) == 1
    assert providers.server(other).requests == []


@pytest.mark.parametrize("first", ["openai", "anthropic"])
async def test_a_connection_cut_mid_stream_is_reported_as_a_broken_stream(
    providers: Providers, first: str
) -> None:
    providers.server(first).reply("One two three four five six seven eight.", chunk_size=4)
    providers.server(first).fail_mid_stream(after_chunks=2, abrupt=True)
    client = providers.client()

    async def read() -> None:
        async for _ in client.stream(chain(first)):
            pass

    with pytest.raises(AIStreamError):
        await read()
    await client.aclose()


async def test_an_overload_event_before_the_first_token_falls_back(
    providers: Providers,
) -> None:
    providers.anthropic.fail_mid_stream(after_chunks=0)
    providers.openai.reply("Fallback after the overload.")
    client = providers.client()

    events = [event async for event in client.stream(chain("anthropic", "openai"))]
    await client.aclose()

    final = events[-1]
    assert isinstance(final, ChatResponse)
    assert final.provider == "openai"
