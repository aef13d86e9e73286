"""The AI module in a service: SSE that stops upstream on disconnect, quotas as 429s, usage
in metrics, logs, the table and hooks."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from sqlalchemy import select

from omnistack_core.ai import AIModule, UsageRecord, ai_metadata, ai_usage
from omnistack_core.testing import app_client
from tests.ai.ai_apps import ai_app, served
from tests.ai.ai_clients import Providers


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_sse_relays_deltas_then_the_whole_answer(providers: Providers, provider: str) -> None:
    providers.server(provider).reply("Streaming to a browser works.", chunk_size=5)
    app = ai_app(providers)

    async with app_client(app) as client:
        response = await client.post(
            "/chat", json={"text": "Hi", "provider": provider, "stream": True}
        )

    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert {name for name, _ in events[:-1]} == {"delta"}
    assert "".join(str(data["text"]) for _, data in events[:-1]) == "Streaming to a browser works."
    name, done = events[-1]
    assert name == "done"
    assert done["text"] == "Streaming to a browser works."
    assert done["provider"] == provider


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_client_that_disconnects_mid_stream_stops_the_upstream_call(
    providers: Providers, provider: str
) -> None:
    server = providers.server(provider)
    server.reply("word " * 200, chunk_size=5, chunk_delay=0.05)
    app = ai_app(providers)

    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream(
            "POST", "/chat", json={"text": "Go on", "provider": provider, "stream": True}
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("event: delta"):
                    break  # the reader leaves after the first piece
        seen = await asyncio.to_thread(server.wait_for_disconnect, 5.0)

    assert seen
    assert server.disconnects == 1


async def test_the_quota_refuses_with_429_and_retry_after(providers: Providers) -> None:
    app = ai_app(providers, ai_quota_requests=2, ai_quota_window_seconds=3600)

    async with app_client(app) as client:
        answers = [
            await client.post("/chat", json={"text": "Hi"}, headers={"X-User": "ada"})
            for _ in range(3)
        ]
        streamed = await client.post(
            "/chat", json={"text": "Hi", "stream": True}, headers={"X-User": "ada"}
        )
        other = await client.post("/chat", json={"text": "Hi"}, headers={"X-User": "bob"})

    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert streamed.status_code == 429  # refused before the stream started
    assert other.status_code == 200
    assert len(providers.openai.requests) == 3


async def test_usage_goes_to_metrics_log_table_and_hooks(
    providers: Providers, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[UsageRecord] = []

    async def report(record: UsageRecord) -> None:
        reported.append(record)

    providers.openai.reply("Counted.", usage={"prompt_tokens": 12, "completion_tokens": 3})
    providers.anthropic.reply("Streamed and counted.")
    app = ai_app(providers, AIModule(on_usage=[report]), ai_record_usage=True)

    with caplog.at_level(logging.INFO, logger="omnistack.ai"):
        async with app_client(app) as client:
            async with app.state.database.engine.begin() as connection:
                await connection.run_sync(ai_metadata.create_all)
            before = (await client.get("/api/v1/public/metrics")).text
            await client.post("/chat", json={"text": "Hi"}, headers={"X-User": "ada"})
            await client.post(
                "/chat",
                json={"text": "Hi", "provider": "anthropic", "stream": True},
                headers={"X-User": "ada"},
            )
            after = (await client.get("/api/v1/public/metrics")).text
            async with app.state.database.session() as session:
                rows = (await session.execute(select(ai_usage))).all()

    def count(text: str, *labels: str) -> float:
        for line in text.splitlines():
            if line.startswith("ai_") and all(label in line for label in labels):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    openai_in = ("ai_tokens_total{", 'provider="openai"', 'model="gpt-4o-mini"', 'kind="input"')
    assert count(after, *openai_in) - count(before, *openai_in) == 12
    success = ("ai_requests_total{", 'provider="anthropic"', 'status="success"')
    assert count(after, *success) - count(before, *success) == 1
    assert sorted((r.provider, r.user_id, r.input_tokens) for r in rows)[1] == ("openai", "ada", 12)
    assert len(rows) == 2
    assert [r.provider for r in reported] == ["openai", "anthropic"]
    assert reported[1].streamed
    assert reported[0].cost == pytest.approx((12 * 0.15 + 3 * 0.60) / 1_000_000)
    logged = [r for r in caplog.records if r.getMessage().startswith("AI call to openai")]
    assert logged[0].__dict__["output_tokens"] == 3
