"""Sentry: off without a DSN, listed integrations only, probes untraced, no secret reported.

Every report goes to a transport that keeps envelopes in memory: nothing leaves the process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from omnistack_core import create_app, load_settings
from omnistack_core.errors import MissingDependencyError
from omnistack_core.observability.sentry import (
    FILTERED,
    PROBE_PATHS,
    RELEASE_VARIABLES,
    init_sentry,
    release_from_environment,
)
from omnistack_core.request_context import request_id_var
from omnistack_core.settings import Settings
from omnistack_core.testing import app_client

if TYPE_CHECKING:
    from sentry_sdk.envelope import Envelope

# Skipped without the observability extra. What such an install does with a DSN is shown
# below by hiding the SDK (test_a_dsn_without_the_extra_names_what_to_install).
sentry_sdk = pytest.importorskip("sentry_sdk", reason="needs the observability extra")
sentry_transport = pytest.importorskip("sentry_sdk.transport")

DSN = "https://public@o0.ingest.sentry.io/1"
STRIPE_KEY = "sk_live_51FakeStripeSecretKey"
WEBHOOK_SECRET = "whsec_FakeWebhookSigningSecret"
OPENAI_KEY = "sk-proj-FakeOpenAIKey0123"
REDIS_PASSWORD = "redis-pass-8c1f0e"
CONFIGURED_SECRETS = (STRIPE_KEY, WEBHOOK_SECRET, OPENAI_KEY, REDIS_PASSWORD)
# Values that are no configured secret: only the names they are filed under can hide them.
# (Constants, because reports quote the source lines around each frame.)
NAMED_SECRET = "unconfigured-value-1"
NAMED_TOKEN = "unconfigured-value-2"

# Credentials a client sends; none is a configured secret, so only the header rules hide them.
REQUEST_CREDENTIALS = {
    "Authorization": "Bearer bearer-credential-1",
    "Cookie": "session=cookie-credential-2",
    "Stripe-Signature": "t=1,v1=signature-credential-3",
    "Proxy-Authorization": "Basic proxy-credential-4",
    "X-Api-Key": "api-key-credential-5",
    "X-Session-Token": "token-credential-6",
}


class RecordingTransport(sentry_transport.Transport):
    """Keeps every envelope the SDK would send."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def payloads(self, item_type: str) -> list[dict[str, Any]]:
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == item_type and item.payload.json is not None
        ]

    def events(self) -> list[dict[str, Any]]:
        return self.payloads("event")

    def transactions(self) -> list[dict[str, Any]]:
        return self.payloads("transaction")

    def wire_text(self) -> str:
        """Everything that would go over the network, as text."""
        sentry_sdk.flush()
        return b"".join(envelope.serialize() for envelope in self.envelopes).decode()


@pytest.fixture(autouse=True)
def sentry_torn_down() -> Iterator[None]:
    """Each test starts and ends with no Sentry client and empty scopes."""
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


class ShopSettings(Settings):
    """A service whose modules hold secrets of their own, as billing and AI do."""

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    openai_api_key: SecretStr | None = None


def sentry_settings(**values: Any) -> Settings:
    values = {
        "sentry_dsn": DSN,
        "stripe_secret_key": STRIPE_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "openai_api_key": OPENAI_KEY,
        "redis_url": f"redis://:{REDIS_PASSWORD}@cache:6379/0",
    } | values
    return load_settings(ShopSettings, **values)


def app_for(settings: Settings) -> FastAPI:
    """An app on ``settings`` whose own start-up neither replaces the test's Sentry client
    (no DSN) nor connects to Redis."""
    return create_app(settings.model_copy(update={"sentry_dsn": None, "redis_url": None}))


def assert_no_credentials(text: str) -> None:
    for secret in (*CONFIGURED_SECRETS, *REQUEST_CREDENTIALS.values()):
        assert secret not in text


@pytest.mark.parametrize("sdk_collects_pii", [False, True])
async def test_an_error_in_a_route_is_reported_without_credentials(
    transport: RecordingTransport, caplog: pytest.LogCaptureFixture, sdk_collects_pii: bool
) -> None:
    settings = sentry_settings()
    if sdk_collects_pii:
        # The SDK then collects cookies and the Authorization header itself: our scrubbing
        # must hold on its own. (sentry-sdk 2.75 deprecates the option, with a warning.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert init_sentry(settings, transport=transport, send_default_pii=True)
    else:
        assert init_sentry(settings, transport=transport)
    caplog.set_level(logging.INFO)
    app = app_for(settings)

    @app.get("/api/v1/charges/{charge_id}")
    async def charge(charge_id: str) -> None:
        signing_value = WEBHOOK_SECRET  # a frame local, reported with the stack trace
        logging.getLogger("shop.billing").info("charging %s with %s", charge_id, STRIPE_KEY)
        raise RuntimeError(f"Stripe refused {STRIPE_KEY} signed with {signing_value}")

    async with app_client(app) as client:
        response = await client.get(
            "/api/v1/charges/ch_1?access_token=query-credential-7&page=2",
            headers={**REQUEST_CREDENTIALS, "User-Agent": "shop-client/1.0"},
        )

    assert response.status_code == 500
    [event] = transport.events()
    wire = transport.wire_text()
    assert_no_credentials(wire)
    assert "query-credential-7" not in wire
    request = event["request"]
    for name in REQUEST_CREDENTIALS:
        assert request["headers"][name.lower()] == FILTERED
    assert "cookies" not in request
    assert FILTERED not in json.dumps(event.get("_meta", {}))  # the SDK's notes keep their shape
    assert request["headers"]["user-agent"] == "shop-client/1.0"
    assert request["url"] == "http://testserver/api/v1/charges/ch_1"
    assert request["query_string"] == f"access_token={FILTERED}&page=2"
    [exception] = event["exception"]["values"]
    assert exception["value"] == "Stripe refused *** signed with ***"
    frame = next(f for f in exception["stacktrace"]["frames"] if f["function"] == "charge")
    assert frame["vars"]["signing_value"] == "'***'"
    assert frame["vars"]["charge_id"] == "'ch_1'"
    crumbs = [crumb["message"] for crumb in event["breadcrumbs"]["values"]]
    assert "charging ch_1 with ***" in crumbs
    if not sdk_collects_pii:
        assert "env" not in request  # no client address
        assert "ip_address" not in event.get("user", {})


def test_secrets_are_masked_in_messages_extra_contexts_and_breadcrumbs(
    transport: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    init_sentry(sentry_settings(), transport=transport)
    caplog.set_level(logging.INFO, logger="shop")
    log = logging.getLogger("shop")
    sentry_sdk.set_context("billing", {"customer": "cus_1", "key": STRIPE_KEY})
    sentry_sdk.set_extra("cache", f"redis://:{REDIS_PASSWORD}@cache:6379/0")
    sentry_sdk.set_extra("client_secret", NAMED_SECRET)
    log.info("calling OpenAI with %s", OPENAI_KEY)
    try:
        reject(OPENAI_KEY)
    except ValueError:
        sentry_sdk.capture_exception()
    log.error("webhook %s rejected", WEBHOOK_SECRET, extra={"api_token": NAMED_TOKEN})
    sentry_sdk.capture_message(
        f"mailed https://shop.example/reset?page=1&reset_token={NAMED_TOKEN}"
    )

    captured, logged, messaged = transport.events()
    wire = transport.wire_text()
    assert_no_credentials(wire)
    assert NAMED_SECRET not in wire
    assert NAMED_TOKEN not in wire
    assert captured["exception"]["values"][0]["value"] == "OpenAI rejected ***"
    assert captured["contexts"]["billing"] == {"customer": "cus_1", "key": "***"}
    assert captured["extra"]["cache"] == "redis://:***@cache:6379/0"
    assert captured["extra"]["client_secret"] == FILTERED
    assert captured["breadcrumbs"]["values"][-1]["message"] == "calling OpenAI with ***"
    assert logged["logentry"]["formatted"] == "webhook *** rejected"
    assert logged["extra"]["api_token"] == FILTERED
    assert messaged["message"] == f"mailed https://shop.example/reset?page=1&reset_token={FILTERED}"


def reject(key: str) -> None:
    raise ValueError(f"OpenAI rejected {key}")


def test_breadcrumbs_are_scrubbed_when_recorded_even_if_before_send_is_replaced(
    transport: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    init_sentry(sentry_settings(), transport=transport, before_send=lambda event, _: event)
    caplog.set_level(logging.INFO, logger="shop")
    logging.getLogger("shop").info("calling OpenAI with %s", OPENAI_KEY)
    sentry_sdk.capture_message("after the call")

    [event] = transport.events()
    assert event["breadcrumbs"]["values"][-1]["message"] == "calling OpenAI with ***"


def test_sentry_logs_are_scrubbed_when_turned_on(
    transport: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    init_sentry(sentry_settings(), transport=transport, enable_logs=True)
    caplog.set_level(logging.INFO, logger="shop")
    logging.getLogger("shop").warning("retry with %s", STRIPE_KEY, extra={"api_key": NAMED_TOKEN})

    wire = transport.wire_text()
    assert "retry with ***" in wire
    assert_no_credentials(wire)
    assert NAMED_TOKEN not in wire


def test_errors_logged_are_events_and_lesser_records_breadcrumbs(
    transport: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    init_sentry(sentry_settings(), transport=transport)
    caplog.set_level(logging.DEBUG, logger="shop")
    log = logging.getLogger("shop")
    log.debug("debug detail")
    log.info("info step")
    log.warning("warning sign")
    log.error("error happened")

    [event] = transport.events()
    assert event["logentry"]["formatted"] == "error happened"
    crumbs = [crumb["message"] for crumb in event["breadcrumbs"]["values"]]
    assert crumbs == ["info step", "warning sign"]


def test_events_are_tagged_with_the_request_id_being_served(
    transport: RecordingTransport,
) -> None:
    init_sentry(sentry_settings(), transport=transport)
    token = request_id_var.set("req-7f3a")
    try:
        sentry_sdk.capture_message("inside a request")
    finally:
        request_id_var.reset(token)
    sentry_sdk.capture_message("outside any request")

    inside, outside = transport.events()
    assert inside["tags"]["request_id"] == "req-7f3a"
    assert "request_id" not in outside.get("tags", {})


def test_events_carry_the_environment_and_the_release(
    transport: RecordingTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in RELEASE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RENDER_GIT_COMMIT", "4f2a9c1")
    init_sentry(sentry_settings(), transport=transport)
    sentry_sdk.capture_message("deployed")

    [event] = transport.events()
    assert event["environment"] == "development"
    assert event["release"] == "4f2a9c1"


def test_only_the_listed_and_default_integrations_are_installed(
    transport: RecordingTransport,
) -> None:
    init_sentry(sentry_settings(), transport=transport)

    installed = set(sentry_sdk.get_client().integrations)
    assert {"starlette", "fastapi", "logging", "dedupe", "excepthook"} <= installed
    assert not installed & {"sqlalchemy", "redis", "asyncpg", "httpx", "openai", "anthropic"}


@pytest.mark.parametrize("path", sorted(PROBE_PATHS))
def test_probes_are_never_traced(transport: RecordingTransport, path: str) -> None:
    init_sentry(sentry_settings(sentry_traces_sample_rate=0.25), transport=transport)
    sampler = sentry_sdk.get_client().options["traces_sampler"]

    for parent_sampled in (None, True):
        assert sampler(sampling_context(path, parent_sampled=parent_sampled)) == 0
    assert sampler(sampling_context(path + "/")) == 0
    assert sampler(sampling_context("/svc" + path, root_path="/svc")) == 0


def test_other_requests_follow_the_parent_else_the_configured_rate(
    transport: RecordingTransport,
) -> None:
    init_sentry(sentry_settings(sentry_traces_sample_rate=0.25), transport=transport)
    sampler = sentry_sdk.get_client().options["traces_sampler"]

    assert sampler(sampling_context("/api/v1/items")) == 0.25
    assert sampler(sampling_context("/api/v1/public/healthy")) == 0.25
    assert sampler(sampling_context("/api/v1/items", parent_sampled=True)) == 1
    assert sampler(sampling_context("/api/v1/items", parent_sampled=False)) == 0


def sampling_context(
    path: str, *, parent_sampled: bool | None = None, root_path: str = ""
) -> dict[str, Any]:
    """What the SDK's ASGI middleware hands the sampler (see sentry_sdk/integrations/asgi.py)."""
    asgi_scope = {"type": "http", "method": "GET", "path": path, "root_path": root_path}
    return {
        "transaction_context": {"op": "http.server", "name": path},
        "parent_sampled": parent_sampled,
        "asgi_scope": asgi_scope,
    }


async def test_a_served_request_is_traced_and_a_served_probe_is_not(
    transport: RecordingTransport,
) -> None:
    settings = sentry_settings(sentry_traces_sample_rate=1.0)
    init_sentry(settings, transport=transport)
    app = app_for(settings)

    @app.get("/api/v1/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with app_client(app) as client:
        assert (await client.get("/api/v1/public/health")).status_code == 200
        assert (await client.get("/api/v1/public/health/ready")).status_code == 200
        items = await client.get("/api/v1/items/7", headers=REQUEST_CREDENTIALS)
        assert items.status_code == 200

    [transaction] = transport.transactions()
    assert transaction["transaction"] == "/api/v1/items/{item_id}"
    assert transaction["request"]["headers"]["stripe-signature"] == FILTERED
    assert_no_credentials(transport.wire_text())


async def test_at_a_zero_rate_nothing_is_traced_even_when_a_client_asks(
    transport: RecordingTransport,
) -> None:
    settings = sentry_settings(sentry_traces_sample_rate=0.0)
    init_sentry(settings, transport=transport)
    app = app_for(settings)

    @app.get("/api/v1/items")
    async def items() -> list[int]:
        return []

    sampled_upstream = {"sentry-trace": "771a43a4192642f0b136d5159a501700-b26b7b3b5f6a4b1a-1"}
    async with app_client(app) as client:
        assert (await client.get("/api/v1/items", headers=sampled_upstream)).status_code == 200

    assert sentry_sdk.get_client().options["traces_sampler"] is None
    assert transport.transactions() == []


def test_without_a_dsn_nothing_is_done_and_the_sdk_is_not_imported() -> None:
    code = """
        import sys
        from omnistack_core.observability.sentry import init_sentry
        from omnistack_core.settings import load_settings

        assert init_sentry(load_settings()) is False
        print("sentry_sdk" in sys.modules)
    """
    assert run_python(code) == "False"


INSTRUMENTED_LIBRARIES = ("openai", "anthropic", "arq", "redis", "sqlalchemy", "asyncpg", "httpx")


@pytest.mark.parametrize("auto_enabling", [None, True])
def test_start_up_imports_no_library_for_the_sdk_to_instrument(
    auto_enabling: bool | None,
) -> None:
    # openai, anthropic and arq are not installed here: the installed redis, SQLAlchemy,
    # asyncpg and httpx are what would show the SDK importing libraries at start-up.
    overrides = "" if auto_enabling is None else f"auto_enabling_integrations={auto_enabling},"
    code = f"""
        import json, sys
        from sentry_sdk.transport import Transport
        from omnistack_core.observability.sentry import init_sentry
        from omnistack_core.settings import load_settings

        class Discard(Transport):
            def capture_envelope(self, envelope):
                pass

        libraries = {INSTRUMENTED_LIBRARIES!r}
        before = {{name for name in libraries if name in sys.modules}}
        init_sentry(load_settings(sentry_dsn={DSN!r}), transport=Discard(), {overrides})
        print(json.dumps(sorted(n for n in libraries if n in sys.modules and n not in before)))
    """
    imported = set(json.loads(run_python(code)))

    if auto_enabling is None:
        assert imported == set()
    else:  # the control: the same check sees what auto-enabling imports
        assert {"redis", "sqlalchemy", "httpx"} <= imported


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_dsn_without_the_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # how Python marks a missing module

    with pytest.raises(
        MissingDependencyError, match=r"pip install 'omnistack-core\[observability\]'"
    ):
        init_sentry(sentry_settings())


@pytest.mark.parametrize(
    ("environ", "release"),
    [
        ({}, None),
        ({"SENTRY_RELEASE": "shop@1.4.0", "GIT_SHA": "4f2a9c1"}, "shop@1.4.0"),
        ({"SENTRY_RELEASE": "", "GIT_SHA": "4f2a9c1"}, "4f2a9c1"),
        ({"GIT_SHA": "  4f2a9c1\n"}, "4f2a9c1"),
        ({"RAILWAY_GIT_COMMIT_SHA": "a1b2c3", "RENDER_GIT_COMMIT": "d4e5f6"}, "a1b2c3"),
        ({"RENDER_GIT_COMMIT": "d4e5f6", "FLY_IMAGE_REF": "registry.fly.io/x:y"}, "d4e5f6"),
        ({"FLY_IMAGE_REF": "registry.fly.io/shop-api:deployment-01HX"}, "deployment-01HX"),
        ({"FLY_IMAGE_REF": "registry.fly.io/shop-api"}, None),
        ({"FLY_IMAGE_REF": "localhost:5000/shop-api"}, None),
        ({"FLY_IMAGE_REF": "registry.fly.io/shop-api:"}, None),
        ({"HEROKU_SLUG_COMMIT": "abc"}, None),
    ],
)
def test_the_release_is_the_first_variable_set(
    environ: dict[str, str], release: str | None
) -> None:
    assert release_from_environment(environ) == release
