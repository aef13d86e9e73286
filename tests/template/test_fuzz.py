"""Schemathesis against a generated service with every module, signed in, on PostgreSQL + Redis.

The "everything" answer set is rendered from this working tree, migrated on a fresh
PostgreSQL database and served by uvicorn beside the local token issuer, Stripe and OpenAI;
Schemathesis then sends every operation of its OpenAPI document requests generated from that
document, with a valid access token. Every answer must be no server error and be declared:
its status, its content type and its body's schema. (Negative generation also sends some
requests without the token, on purpose: those must get the declared 401.)

The budget is fixed (examples per operation, a seeded generator) so a run costs the same in
CI each time: ``FUZZ_EXAMPLES`` raises it for a longer hunt.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from omnistack_core.testing import LocalOpenAI, LocalResend, LocalStripe, wait_until
from omnistack_core.testing.issuer import LocalIssuer
from tests.template.rendering import ANSWER_SETS, render, snapshot

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
"""Requests generated per operation (and per generation mode)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Finding:
    operation: str
    mode: str
    message: str

    def __str__(self) -> str:
        return f"{self.operation} ({self.mode}): {self.message}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot(tmp_path_factory.mktemp("template"))
    destination = tmp_path_factory.mktemp("everything") / "service"
    return render(template, destination, ANSWER_SETS["everything-supabase"])


@pytest.fixture
def service(
    project: Path,
    empty_postgres_url: str,
    redis_url: str,
    local_issuer: LocalIssuer,
    tmp_path: Path,
) -> Iterator[str]:
    """The generated service under uvicorn, migrated, with the local providers: its base URL."""
    port = free_port()
    with LocalStripe() as stripe, LocalOpenAI() as openai, LocalResend() as resend:
        env = {
            # This run's interpreter, which has this checkout's omnistack-core and every extra.
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(project),
            "ENVIRONMENT": "test",
            "SECRET_KEY": "f" * 40,
            "DATABASE_URL": empty_postgres_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "AUTH_PROVIDER": "supabase",
            "SUPABASE_PROJECT_URL": local_issuer.url,
            "EMAIL_PROVIDER": "memory",
            "RESEND_WEBHOOK_SECRET": resend.webhook_secret,
            "STRIPE_API_BASE": stripe.url,
            "STRIPE_SECRET_KEY": stripe.api_key,
            "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
            "BILLING_PLANS": json.dumps({"pro": stripe.add_price(lookup_key="pro-monthly")}),
            "OPENAI_API_KEY": openai.api_key,
            "OPENAI_BASE_URL": openai.url,
            "AI_DEFAULT_MODEL": "openai:gpt-4o-mini",
            "AI_FALLBACK_MODELS": "[]",
            "AI_RECORD_USAGE": "true",
        }
        migrate = subprocess.run(
            [sys.executable, "scripts/migrate_production.py"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        # A file, not a pipe: nobody reads a pipe while the test runs, and a full one would
        # stop the server at its next log line.
        log = tmp_path / "server.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
                cwd=project,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, server, log)
            yield base
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        # What the server logged above warnings: the tracebacks of any 500.
        print(log.read_text()[-20_000:])  # noqa: T201


def wait_until_serving(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    def answers() -> bool:
        if server.poll() is not None:
            pytest.fail(f"uvicorn exited with {server.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"{base}/api/v1/public/health", timeout=1)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, timeout=60, interval=0.2, message="uvicorn did not answer")


def fuzz(schema: schemathesis.BaseSchema, base: str, token: str) -> Run:
    """Run every operation in both generation modes."""
    run = Run(base, {"Authorization": f"Bearer {token}"})
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation the loader cannot read
        operation = result.ok()
        started = time.monotonic()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                run.operation(operation, mode)
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body.
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
        answered = sorted(run.statuses[operation.label].items())
        print(f"{operation.label}: {time.monotonic() - started:.1f} s, {answered}")  # noqa: T201
    return run


@dataclass
class Run:
    """What a fuzz run found, and the statuses it was answered with."""

    base: str
    headers: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def operation(
        self, operation: APIOperation[Any, Any, Any, Any], mode: schemathesis.GenerationMode
    ) -> None:
        seen: set[str] = set()

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            try:
                response = case.call_and_validate(
                    base_url=self.base, headers=self.headers, checks=CHECKS, timeout=30
                )
            except (FailureGroup, Failure) as failed:
                failures = failed.exceptions if isinstance(failed, FailureGroup) else (failed,)
                for failure in failures:
                    if failure.title not in seen:
                        seen.add(failure.title)
                        self.findings.append(Finding(operation.label, mode.value, str(failed)))
            else:
                self.statuses[operation.label][response.status_code] += 1

        send()


def test_every_answer_is_declared_and_none_is_a_server_error(
    service: str, local_issuer: LocalIssuer
) -> None:
    schema = schemathesis.openapi.from_url(f"{service}/openapi.json")
    token = local_issuer.supabase_token("user_fuzz", email="fuzz@example.com")

    run = fuzz(schema, service, token)

    assert run.findings == [], "\n\n".join(str(finding) for finding in run.findings)
    # Every operation was answered, and the token was taken: the run was signed in.
    labels = {result.ok().label for result in schema.get_all_operations()}  # type: ignore[union-attr]
    assert set(run.statuses) == labels
    assert run.statuses["GET /api/v1/me"][200] > 0
