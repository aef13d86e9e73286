"""Subscribing: Checkout and Stripe's webhooks unlock the AI routes and welcome the subscriber."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from examples.saas.api import KEY_POINTS_FEATURE, SUMMARY_PROMPT
from examples.saas.jobs import welcome_subscriber
from examples.saas.tests.service import TRIAL_DAYS, Service
from omnistack_core.billing import billing_customers
from omnistack_core.jobs import JobContext

TEXT = "The committee met on Tuesday. It approved the budget. The vote was unanimous."


async def test_summaries_unlock_with_the_pro_plan(service: Service) -> None:
    _, user = service.new_user()
    service.openai.reply("The committee unanimously approved the budget on Tuesday.")

    before = await service.client.post("/api/v1/summaries", json={"text": TEXT}, headers=user)
    await service.subscribe(user)
    after = await service.client.post("/api/v1/summaries", json={"text": TEXT}, headers=user)

    assert before.status_code == 402
    assert before.json()["plans"] == ["pro"]
    assert before.json()["checkout"] == "/api/v1/billing/checkout"
    assert after.status_code == 200, after.text
    assert after.json()["text"] == "The committee unanimously approved the budget on Tuesday."
    (request,) = service.openai.requests
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == [
        {"role": "system", "content": SUMMARY_PROMPT},
        {"role": "user", "content": TEXT},
    ]


async def test_a_canceled_subscription_locks_summaries_again(service: Service) -> None:
    _, user = service.new_user()
    events = await service.subscribe(user)
    subscription_id = events[1]["data"]["object"]["id"]

    service.stripe.advance(60)  # the cancellation comes after the events that created it
    canceled = await service.deliver(service.stripe.cancel_subscription(subscription_id))
    response = await service.client.post("/api/v1/summaries", json={"text": TEXT}, headers=user)

    assert canceled.json() == {"status": "processed"}
    assert response.status_code == 402
    assert service.openai.requests == []


async def test_a_new_subscriber_is_welcomed_once_by_a_job_after_the_webhook(
    service: Service,
) -> None:
    user_id, user = service.new_user()
    await service.client.put("/api/v1/account", json={"name": "Grace"}, headers=user)
    events = await service.subscribe(user)
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    redelivered = await service.deliver(created)
    await service.jobs_done()

    assert redelivered.json() == {"status": "duplicate"}
    subject = "Your Summarizer pro plan is active"
    welcomes = [d for d in service.resend.deliveries if d.payload["subject"] == subject]
    (welcome,) = welcomes
    subscription = created["data"]["object"]
    assert welcome.to == [f"{user_id}@example.com"]
    assert welcome.idempotency_key == f"subscriber-welcome/{subscription['id']}"
    trial_end = datetime.fromtimestamp(subscription["trial_end"], UTC).date()
    assert (trial_end - datetime.now(UTC).date()).days == TRIAL_DAYS
    assert f"free until {trial_end.isoformat()}" in welcome.payload["html"]
    assert "Hi Grace," in welcome.payload["text"]


async def test_the_welcome_job_sends_nothing_once_the_subscription_is_gone(
    service: Service,
) -> None:
    user_id, user = service.new_user()
    events = await service.subscribe(user)
    await service.jobs_done()
    subscription_id = events[1]["data"]["object"]["id"]
    service.stripe.advance(60)
    await service.deliver(service.stripe.cancel_subscription(subscription_id))
    sent = len(service.resend.deliveries)

    # As a retry of the job would run after the cancellation: a job is a plain coroutine.
    context = JobContext(service.app, "welcome-retry", "saas.welcome_subscriber", attempt=2)
    await welcome_subscriber(context, user_id, subscription_id)

    assert sent == 1  # the welcome sent right after the webhook, before the cancellation
    assert len(service.resend.deliveries) == sent


async def test_key_points_need_the_feature_from_stripe_entitlements(service: Service) -> None:
    user_id, user = service.new_user()
    await service.subscribe(user)
    service.openai.reply('{"points": ["The budget passed.", "Every member voted for it."]}')

    without = await service.client.post("/api/v1/key-points", json={"text": TEXT}, headers=user)
    async with service.app.state.database.session() as session:
        customer_id = await session.scalar(
            select(billing_customers.c.customer_id).where(billing_customers.c.user_id == user_id)
        )
    granted = service.stripe.set_entitlements(str(customer_id), [KEY_POINTS_FEATURE])
    assert (await service.deliver(granted)).json() == {"status": "processed"}
    with_feature = await service.client.post(
        "/api/v1/key-points", json={"text": TEXT}, headers=user
    )

    assert without.status_code == 402
    assert without.json()["feature"] == KEY_POINTS_FEATURE
    assert with_feature.status_code == 200, with_feature.text
    assert with_feature.json() == {"points": ["The budget passed.", "Every member voted for it."]}
    # Structured output: the model was asked for JSON in the shape of KeyPoints.
    response_format = service.openai.requests[-1].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert "points" in response_format["json_schema"]["schema"]["properties"]
