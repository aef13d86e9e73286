"""AI usage: streamed answers, usage reported to Stripe's meter by a job, per-user quotas."""

from __future__ import annotations

import json
import uuid
from typing import Any

from redis.asyncio import Redis

from examples.saas.tests.service import METER, Service, running
from omnistack_core.testing import LocalOpenAI, LocalResend, LocalStripe

TEXT = "Ada wrote the first program. It computed Bernoulli numbers on the Analytical Engine."


def server_sent_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a ``text/event-stream`` body."""
    events = []
    for frame in body.strip().split("\n\n"):
        fields = dict(line.partition(": ")[::2] for line in frame.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_a_streamed_summary_arrives_in_pieces_then_whole(service: Service) -> None:
    _, user = service.new_user()
    await service.subscribe(user)
    service.openai.reply("Ada wrote the first program.", chunk_size=5)

    response = await service.client.post(
        "/api/v1/summaries", json={"text": TEXT, "stream": True}, headers=user
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = server_sent_events(response.text)
    deltas = [data["text"] for event, data in events if event == "delta"]
    assert len(deltas) > 1
    assert events[-1][0] == "done"
    assert "".join(deltas) == events[-1][1]["text"] == "Ada wrote the first program."


async def test_each_call_is_reported_to_the_stripe_meter_by_a_job(service: Service) -> None:
    _, user = service.new_user()
    await service.subscribe(user)
    service.openai.reply("One summary.")
    service.openai.reply("Another summary.", chunk_size=3)

    answered = await service.client.post("/api/v1/summaries", json={"text": TEXT}, headers=user)
    streamed = await service.client.post(
        "/api/v1/summaries", json={"text": TEXT, "stream": True}, headers=user
    )
    await service.jobs_done()

    usage = [answered.json()["usage"], server_sent_events(streamed.text)[-1][1]["usage"]]
    (customer_id,) = service.stripe.customers
    assert [(event["event_name"], event["payload"]) for event in service.stripe.meter_events] == [
        (METER, {"stripe_customer_id": customer_id, "value": str(tokens)})
        for tokens in (u["input_tokens"] + u["output_tokens"] for u in usage)
    ]
    identifiers = {event["identifier"] for event in service.stripe.meter_events}
    assert len(identifiers) == 2


async def test_a_report_stripe_cannot_take_now_is_retried_and_counted_once(
    service: Service,
) -> None:
    _, user = service.new_user()
    await service.subscribe(user)
    service.openai.reply("A summary.")
    service.stripe.fail_next(503, path="/v1/billing/meter_events")

    await service.client.post("/api/v1/summaries", json={"text": TEXT}, headers=user)
    await service.jobs_done()  # and none failed for good

    attempts = [r for r in service.stripe.requests if r.path == "/v1/billing/meter_events"]
    assert [r.status for r in attempts] == [503, 200]
    # The retry is the same report: Stripe's identifier and idempotency key do not change.
    assert len({r.params["identifier"] for r in attempts}) == 1
    assert len(service.stripe.meter_events) == 1


async def test_the_ai_quota_is_per_user_and_shared_by_instances_through_redis(
    settings_values: dict[str, Any],
    redis_url: str,
    local_stripe: LocalStripe,
    local_openai: LocalOpenAI,
    local_resend: LocalResend,
) -> None:
    values = {
        **settings_values,
        "redis_url": redis_url,
        "ai_quota_requests": 2,
        "ai_quota_tokens": 100_000,
        # Jobs now go to Redis, where no worker takes them: a queue of the test's own.
        "jobs_queue_name": f"saas-tests:{uuid.uuid4().hex[:8]}",
    }
    for _ in range(3):
        local_openai.reply("A summary.")
    body = {"text": TEXT}

    async with (
        running(values, local_stripe, local_openai, local_resend) as one,
        running(values, local_stripe, local_openai, local_resend) as another,
    ):
        _, ada = one.new_user()
        _, grace = one.new_user()
        for user in (ada, grace):
            await one.client.put("/api/v1/account", json={"name": "Someone"}, headers=user)
            await one.subscribe(user)
        first = await one.client.post("/api/v1/summaries", json=body, headers=ada)
        second = await another.client.post("/api/v1/summaries", json=body, headers=ada)
        refused = await one.client.post("/api/v1/summaries", json=body, headers=ada)
        others = await another.client.post("/api/v1/summaries", json=body, headers=grace)
        account = await another.client.get("/api/v1/account", headers=ada)

    assert [first.status_code, second.status_code, others.status_code] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert len(local_openai.requests) == 3  # the refused call never reached the provider
    assert account.json()["ai_usage"]["calls"] == 2
    assert account.json()["ai_usage"]["tokens"] > 0
    redis = Redis.from_url(redis_url)
    try:
        assert await redis.keys("omnistack:ai:quota:*")
    finally:
        await redis.aclose()
