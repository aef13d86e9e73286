"""The deployment's shape: the API queues jobs in Redis, a separate arq worker process runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from examples.saas.tests.service import METER, as_environment, running
from omnistack_core.jobs import JobsModule, RedisQueue
from omnistack_core.testing import LocalOpenAI, LocalResend, LocalStripe

REPOSITORY = Path(__file__).resolve().parents[3]


async def wait_until(done: Callable[[], bool], *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_a_worker_process_runs_what_the_api_queues(
    settings_values: dict[str, Any],
    redis_url: str,
    local_stripe: LocalStripe,
    local_openai: LocalOpenAI,
    local_resend: LocalResend,
) -> None:
    values = {
        **settings_values,
        "redis_url": redis_url,
        "jobs_queue_name": f"saas-tests:{uuid.uuid4().hex[:8]}",
        "log_format": "json",
    }
    # The README's worker command, with the same settings as the API, from the environment.
    worker = subprocess.Popen(
        [sys.executable, "-m", "arq", "examples.saas.worker.WorkerSettings"],
        cwd=REPOSITORY,
        env={**os.environ, **as_environment(values)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with running(values, local_stripe, local_openai, local_resend) as service:
            assert isinstance(JobsModule.of(service.app), RedisQueue)
            user_id, user = service.new_user()
            await service.client.put("/api/v1/account", json={"name": "Ada"}, headers=user)
            await service.subscribe(user)
            local_openai.reply("A summary.")
            summary = await service.client.post(
                "/api/v1/summaries", json={"text": "A long text."}, headers=user
            )
        finished = await wait_until(
            lambda: len(local_resend.deliveries) >= 2 and len(local_stripe.meter_events) >= 1,
            seconds=90,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)

    assert finished, output
    assert {(d.payload["subject"], tuple(d.to)) for d in local_resend.deliveries} == {
        ("Welcome to Summarizer", (f"{user_id}@example.com",)),
        ("Your Summarizer pro plan is active", (f"{user_id}@example.com",)),
    }
    (meter_event,) = local_stripe.meter_events
    usage = summary.json()["usage"]
    assert meter_event["event_name"] == METER
    assert meter_event["payload"]["value"] == str(usage["input_tokens"] + usage["output_tokens"])
    succeeded = {
        line["job"]
        for line in map(json.loads, filter(lambda text: text.startswith("{"), output.splitlines()))
        if line.get("logger") == "omnistack.jobs" and line.get("status") == "success"
    }
    assert succeeded == {"omnistack.email.send", "saas.welcome_subscriber", "saas.report_ai_usage"}
