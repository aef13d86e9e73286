"""send_email_later: one job per message, retried on 429s, never delivered twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from omnistack_core import create_app
from omnistack_core.email import (
    SEND_JOB_NAME,
    EmailDeliveryError,
    EmailMessage,
    EmailModule,
    send_email_later,
)
from omnistack_core.email.jobs import SEND_JOB_ATTEMPTS, send_email_job
from omnistack_core.jobs import (
    InlineQueue,
    JobContext,
    JobsModule,
    JobTable,
    TransientError,
    UnknownJobError,
    jobs_metadata,
)
from omnistack_core.testing import app_client
from omnistack_core.testing.resend_server import LocalResend
from tests.email.email_apps import SENDER, running


@dataclass
class Service:
    app: FastAPI
    queue: InlineQueue
    resend: LocalResend


@pytest.fixture
async def service(
    resend_server: LocalResend, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Service]:
    for name, value in {
        "EMAIL_PROVIDER": "resend",
        "RESEND_API_KEY": resend_server.api_key,
        "RESEND_API_URL": resend_server.url,
        "EMAIL_FROM": SENDER,
        "JOBS_RETRY_BASE_SECONDS": "0.01",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app(modules=[JobsModule(), EmailModule()])
    async with running(app):
        async with app.state.database.engine.begin() as connection:
            await connection.run_sync(jobs_metadata.create_all)
        queue = JobsModule.of(app)
        assert isinstance(queue, InlineQueue)
        yield Service(app, queue, resend_server)


def message(**fields: object) -> EmailMessage:
    values: dict[str, object] = {"to": "ada@example.com", "subject": "Receipt", "text": "Thanks"}
    values.update(fields)
    return EmailMessage(**values)  # type: ignore[arg-type]


def test_the_email_module_gives_the_app_its_send_job() -> None:
    app = create_app(modules=[JobsModule(), EmailModule()])

    definition = JobTable.of(app).definition(SEND_JOB_NAME)
    assert definition.function is send_email_job
    assert definition.max_attempts == SEND_JOB_ATTEMPTS


async def test_without_the_email_module_the_queue_refuses_a_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(modules=[JobsModule()])
    async with app_client(app):
        with pytest.raises(UnknownJobError, match="not a job of this app"):
            await send_email_later(JobsModule.of(app), message())


async def test_the_same_message_queued_twice_is_one_job_and_one_email(service: Service) -> None:
    sent = message()

    job_id = await send_email_later(service.queue, sent)
    again = await send_email_later(service.queue, message())
    await service.queue.drain()

    assert job_id == f"email:{sent.content_key()}"
    assert again is None
    [delivery] = service.resend.deliveries
    assert delivery.idempotency_key == sent.content_key()
    assert delivery.payload["from"] == SENDER
    assert delivery.payload["text"] == "Thanks"


async def test_a_callers_key_names_the_job_and_the_send(service: Service) -> None:
    job_id = await send_email_later(service.queue, message(), idempotency_key="receipt/order-9")
    await service.queue.drain()

    assert job_id == "email:receipt/order-9"
    assert service.resend.deliveries[0].idempotency_key == "receipt/order-9"


async def test_a_429_is_retried_by_the_queue_and_delivered_once(service: Service) -> None:
    service.resend.fail_next(429, retry_after=0.05, times=2)

    await send_email_later(service.queue, message())
    await service.queue.drain()

    assert [r.status for r in service.resend.requests] == [429, 429, 200]
    assert len({r.headers["idempotency-key"] for r in service.resend.requests}) == 1
    assert len(service.resend.deliveries) == 1
    assert service.queue.failed == []


async def test_a_retry_after_a_lost_answer_does_not_deliver_twice(service: Service) -> None:
    # Resend takes the email but the answer is lost (a proxy answers 502): the job retries
    # with the same key, and Resend answers the first id without sending a second email.
    service.resend.fail_next(502, after_handling=True)

    await send_email_later(service.queue, message())
    await service.queue.drain()

    assert [r.status for r in service.resend.requests] == [502, 200]
    assert len(service.resend.deliveries) == 1
    assert service.queue.failed == []


async def test_a_refused_message_fails_the_job_at_once(service: Service) -> None:
    service.resend.fail_next(422, "validation_error", "Invalid `to` field.")

    await send_email_later(service.queue, message())
    await service.queue.drain()

    assert len(service.resend.requests) == 1
    [(_, name, error)] = service.queue.failed
    assert name == SEND_JOB_NAME
    assert error.startswith("EmailDeliveryError: Resend answered 422 validation_error")


async def test_the_job_turns_a_429_into_a_transient_error_with_retry_after(
    service: Service,
) -> None:
    service.resend.fail_next(429, retry_after=30)
    context = JobContext(service.app, "email:k", SEND_JOB_NAME, 1)

    with pytest.raises(TransientError) as caught:
        await send_email_job(context, message().to_dict(), "k")

    assert caught.value.retry_after == 30
    assert len(service.resend.requests) == 1  # no waiting inside the job


async def test_the_job_lets_a_permanent_error_through(service: Service) -> None:
    service.resend.fail_next(401, "restricted_api_key", "This API key is restricted.")
    context = JobContext(service.app, "email:k", SEND_JOB_NAME, 1)

    with pytest.raises(EmailDeliveryError):
        await send_email_job(context, message().to_dict(), "k")


async def test_a_send_to_a_suppressed_address_is_skipped_by_the_job(service: Service) -> None:
    await EmailModule.of(service.app).suppressions.add("ada@example.com", "bounced")

    await send_email_later(service.queue, message())
    await service.queue.drain()

    assert service.resend.requests == []
    assert service.queue.failed == []
