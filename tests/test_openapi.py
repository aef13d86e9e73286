"""The OpenAPI document declares what the API answers: problem+json errors, the bearer scheme."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from fastapi import Depends, FastAPI, Request
from openapi_spec_validator import validate

from omnistack_core import Settings, create_app, load_settings
from omnistack_core.ai import AI, STREAM_RESPONSES, AIModule, AISettings
from omnistack_core.auth import (
    AuthModule,
    AuthSettings,
    CurrentUser,
    OptionalUser,
    mint_dev_token,
    require_roles,
)
from omnistack_core.billing import BillingModule, BillingSettings
from omnistack_core.email import EmailModule, EmailSettings
from omnistack_core.errors import PROBLEM_MEDIA_TYPE, ProblemError
from omnistack_core.openapi import declare_problems, describe_problems, problem_responses
from omnistack_core.rate_limit import RateLimit
from omnistack_core.testing import app_client
from omnistack_core.validation import RowId

SECRET_KEY = "openapi-tests-secret-key-0123456789abcdef"
PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


@declare_problems(429)
async def rate_limited(request: Request) -> None:
    if request.headers.get("x-too-many"):
        raise ProblemError(429, "Slow down.", headers={"Retry-After": "1"})


async def limited(_: Annotated[None, Depends(rate_limited)]) -> None:
    """Uses the rate limiter one level down."""


class ServiceSettings(Settings, AuthSettings, EmailSettings, BillingSettings, AISettings):
    """A service with auth, email and billing."""


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    secret = "whsec_" + base64.b64encode(b"0" * 32).decode()
    settings = load_settings(
        ServiceSettings,
        env_file=None,
        environment="test",
        secret_key=SECRET_KEY,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/test.db",
        auth_provider="dev",
        email_provider="memory",
        email_from="Service <service@example.com>",
        resend_webhook_secret=secret,
        stripe_secret_key="sk_test_openapi",
        stripe_webhook_secret=secret,
        billing_plans={"pro": "price_pro"},
    )
    app = create_app(settings, modules=[AuthModule(), EmailModule(), BillingModule(), AIModule()])

    @app.get(
        "/items/{item_id}",
        dependencies=[Depends(limited)],
        responses={404: {"description": "No such item."}},
    )
    async def read_item(item_id: RowId, user: CurrentUser) -> dict[str, int]:
        raise ProblemError(404, f"No item {item_id}.")

    @app.get("/greeting")
    async def greeting(user: OptionalUser) -> dict[str, str]:
        return {"hello": user.id if user else "stranger"}

    @app.delete(
        "/admin/items",
        dependencies=[Depends(require_roles("admin"))],
        responses=problem_responses(409),
    )
    async def purge() -> dict[str, bool]:
        return {"purged": True}

    @app.post("/chat", response_model=None, responses=STREAM_RESPONSES)
    async def chat(user: CurrentUser, ai: AI) -> dict[str, str]:
        return {}

    return app


def operation(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    return app.openapi()["paths"][path][method]  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi(app: FastAPI) -> None:
    validate(app.openapi())


def test_a_422_is_declared_as_problem_json_with_its_errors(app: FastAPI) -> None:
    document = app.openapi()
    declared = operation(app, "post", "/api/v1/billing/checkout")["responses"]["422"]

    assert declared["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}
    assert "errors" in document["components"]["schemas"]["Problem"]["properties"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ValidationError" not in document["components"]["schemas"]


async def test_a_422_body_is_what_the_problem_schema_says(app: FastAPI) -> None:
    token = mint_dev_token(SECRET_KEY, "user-1")
    async with app_client(app) as client:
        response = await client.get(
            "/items/2147483648", headers={"Authorization": f"Bearer {token}"}
        )
    schema = app.openapi()["components"]["schemas"]["Problem"]

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    jsonschema.validate(response.json(), schema)
    assert response.json()["errors"][0]["loc"] == ["path", "item_id"]


def test_the_bearer_scheme_is_declared(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]

    assert schemes == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from the service's identity provider.",
        }
    }


def test_signed_in_routes_require_the_bearer_scheme_and_declare_401(app: FastAPI) -> None:
    subscription = operation(app, "get", "/api/v1/billing/subscription")

    assert subscription["security"] == [{"bearerAuth": []}]
    assert subscription["responses"]["401"]["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}


def test_routes_with_an_optional_user_accept_anonymous_callers(app: FastAPI) -> None:
    greeting = operation(app, "get", "/greeting")

    assert greeting["security"] == [{"bearerAuth": []}, {}]
    assert "401" in greeting["responses"]  # an invalid token is still refused


def test_public_routes_have_no_security(app: FastAPI) -> None:
    liveness = operation(app, "get", "/api/v1/public/health")

    assert "security" not in liveness
    assert "401" not in liveness["responses"]


def test_role_checks_declare_403(app: FastAPI) -> None:
    purge = operation(app, "delete", "/admin/items")

    assert set(purge["responses"]) >= {"401", "403", "409", "500"}
    assert purge["responses"]["403"]["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}


def test_a_route_s_own_statuses_become_problem_json(app: FastAPI) -> None:
    declared = operation(app, "get", "/items/{item_id}")["responses"]["404"]

    assert declared == {"description": "No such item.", "content": {PROBLEM_MEDIA_TYPE: PROBLEM}}


def test_a_marked_dependency_declares_its_status_however_deep(app: FastAPI) -> None:
    responses = operation(app, "get", "/items/{item_id}")["responses"]

    assert responses["429"]["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}
    assert "429" not in operation(app, "get", "/greeting")["responses"]


def test_a_rate_limited_route_declares_429(app: FastAPI) -> None:
    @app.post("/notes", dependencies=[Depends(RateLimit("10/minute"))])
    async def note() -> dict[str, bool]:
        return {"noted": True}

    assert "429" in operation(app, "post", "/notes")["responses"]
    assert "429" not in operation(app, "get", "/greeting")["responses"]


def test_operations_with_a_body_declare_400_and_413_and_all_declare_500(app: FastAPI) -> None:
    checkout = operation(app, "post", "/api/v1/billing/checkout")
    subscription = operation(app, "get", "/api/v1/billing/subscription")

    assert {"400", "413", "500"} <= set(checkout["responses"])
    assert "500" in subscription["responses"]
    assert "413" not in subscription["responses"]


def test_the_webhooks_declare_their_400_and_signature_headers(app: FastAPI) -> None:
    stripe = operation(app, "post", "/api/v1/billing/webhook")
    resend = operation(app, "post", "/api/v1/email/webhook")

    assert stripe["responses"]["400"]["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}
    assert [p["name"] for p in stripe["parameters"]] == ["Stripe-Signature"]
    assert resend["responses"]["400"]["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}
    assert [p["name"] for p in resend["parameters"]] == [
        "svix-id",
        "svix-timestamp",
        "svix-signature",
    ]


def test_the_document_is_corrected_again_after_routes_are_added(app: FastAPI) -> None:
    app.openapi()

    @app.get("/late", responses={404: {"description": "Gone."}})
    async def late() -> dict[str, str]:
        return {}

    assert operation(app, "get", "/late")["responses"]["404"]["content"] == {
        PROBLEM_MEDIA_TYPE: PROBLEM
    }


def test_an_app_of_its_own_opts_in() -> None:
    app = FastAPI()
    describe_problems(app)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: RowId) -> dict[str, int]:
        return {"id": thing_id}

    responses = operation(app, "get", "/things/{thing_id}")["responses"]
    assert responses["422"]["content"] == {PROBLEM_MEDIA_TYPE: PROBLEM}
    assert "Problem" in app.openapi()["components"]["schemas"]


def test_the_ai_client_declares_its_statuses_and_streams_their_type(app: FastAPI) -> None:
    responses = operation(app, "post", "/chat")["responses"]

    assert {"401", "429", "502", "503"} <= set(responses)
    assert set(responses["200"]["content"]) == {"application/json", "text/event-stream"}
    event = responses["200"]["content"]["text/event-stream"]["schema"]
    assert event["properties"]["event"]["enum"] == ["delta", "tool_call", "done", "error"]


def test_the_module_exports_what_it_lists() -> None:
    import omnistack_core.openapi as module  # noqa: PLC0415 - the module itself is the subject

    assert module.__all__ == sorted(module.__all__, key=lambda name: (not name.isupper(), name))
    assert all(hasattr(module, name) for name in module.__all__)


def test_readiness_declares_its_not_ready_report(app: FastAPI) -> None:
    answers = app.openapi()["paths"]["/api/v1/public/health/ready"]["get"]["responses"]

    assert set(answers["503"]["content"]) == {"application/json"}


def test_an_app_whose_routes_take_no_input_has_a_document_too() -> None:
    schema = create_app(load_settings(env_file=None)).openapi()

    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "/api/v1/public/health" in schema["paths"]
