"""``omnistack check-config`` refuses exactly what the app refuses, and lists the variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("jwt", reason="needs the auth extra")
pytest.importorskip("arq", reason="needs the jobs extra")
pytest.importorskip("resend", reason="needs the email extra")
pytest.importorskip("stripe", reason="needs the billing extra")
pytest.importorskip("openai", reason="needs the ai extra")

from omnistack_core import ConfigurationError, create_app
from omnistack_core.ai import AIModule
from omnistack_core.auth import AuthModule
from omnistack_core.billing import BillingModule
from omnistack_core.cli import main
from omnistack_core.email import EmailModule
from omnistack_core.jobs import JobsModule

SECRET = "k" * 48
STRIPE_KEY = "sk_live_never_printed_0123456789"
PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": SECRET,
    "DATABASE_URL": "postgres://app:db-password@db:5432/app",
    "REDIS_URL": "redis://cache:6379/0",
    "AUTH_PROVIDER": "clerk",
    "CLERK_ISSUER_URL": "https://example.clerk.accounts.dev",
    "EMAIL_PROVIDER": "resend",
    "EMAIL_FROM": "Acme <hello@acme.example.com>",
    "RESEND_API_KEY": "re_never_printed",
    "STRIPE_SECRET_KEY": STRIPE_KEY,
    "STRIPE_WEBHOOK_SECRET": "whsec_never_printed_0123",
    "BILLING_PLANS": '{"pro": "price_123"}',
    "BILLING_SUCCESS_URL": "https://app.example.com/billing/done",
}
"""What production needs for every module: it starts."""

SERVICE = """\
from omnistack_core import create_app
from omnistack_core.ai import AIModule
from omnistack_core.auth import AuthModule
from omnistack_core.billing import BillingModule
from omnistack_core.email import EmailModule
from omnistack_core.jobs import JobsModule

app = create_app(
    modules=[AuthModule(), EmailModule(), BillingModule(), AIModule(), JobsModule()]
)
"""


def every_module() -> list[object]:
    return [AuthModule(), EmailModule(), BillingModule(), AIModule(), JobsModule()]


@pytest.fixture
def service(isolated_environment: Path) -> Path:
    """A service with every module, named in its pyproject as a generated one is."""
    (isolated_environment / "pyproject.toml").write_text('[tool.omnistack]\napp = "svc:app"\n')
    (isolated_environment / "svc.py").write_text(SERVICE)
    return isolated_environment


def without(*names: str, **changes: str) -> dict[str, str]:
    values = {name: value for name, value in PRODUCTION.items() if name not in names}
    return values | changes


BAD_CONFIGURATIONS = {
    "core: no secret key": without("SECRET_KEY"),
    "core: a short secret key": without(SECRET_KEY="short"),
    "core: no database": without("DATABASE_URL"),
    "core: a database URL of another kind": without(DATABASE_URL="mysql://u:p@h/db"),
    "core: a pool size that is not a number": without(DB_POOL_SIZE="lots"),
    "core: a Sentry DSN without a project": without(SENTRY_DSN="https://key@sentry.io/"),
    "core: an environment nobody knows": without(ENVIRONMENT="prd"),
    "auth: no provider": without("AUTH_PROVIDER"),
    "auth: dev tokens in production": without(AUTH_PROVIDER="dev"),
    "auth: clerk without its issuer": without("CLERK_ISSUER_URL"),
    "auth: supabase without its project": without(AUTH_PROVIDER="supabase"),
    "auth: an issuer over http": without(CLERK_ISSUER_URL="http://clerk.example.com"),
    "jobs: no Redis": without("REDIS_URL"),
    "jobs: Redis of another scheme": without(REDIS_URL="http://cache:6379"),
    "email: no provider": without("EMAIL_PROVIDER"),
    "email: resend without its key and sender": without("RESEND_API_KEY", "EMAIL_FROM"),
    "email: smtp without a host": without(EMAIL_PROVIDER="smtp"),
    "email: memory in production": without(EMAIL_PROVIDER="memory"),
    "billing: no Stripe keys": without("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"),
    "billing: a publishable key": without(STRIPE_SECRET_KEY="pk_live_0123456789"),
    "billing: no plans and no return page": without("BILLING_PLANS", "BILLING_SUCCESS_URL"),
    "billing: plans that are not JSON": without(BILLING_PLANS="pro=price_123"),
    "ai: a model without its key": without(AI_DEFAULT_MODEL="openai:gpt-4o-mini"),
    "ai: a fallback without its key": without(AI_FALLBACK_MODELS="anthropic:claude-haiku-4-5"),
    "ai: a model of an unknown provider": without(AI_DEFAULT_MODEL="mistral:large"),
    "every module at once": {"ENVIRONMENT": "production"},
}


def set_environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def problem_lines(text: str) -> list[str]:
    return [line.removeprefix("  - ") for line in text.splitlines() if line.startswith("  - ")]


@pytest.mark.parametrize("values", BAD_CONFIGURATIONS.values(), ids=BAD_CONFIGURATIONS.keys())
def test_check_config_refuses_what_the_app_refuses_with_the_same_problems(
    service: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    values: dict[str, str],
) -> None:
    set_environment(monkeypatch, values)
    with pytest.raises(ConfigurationError) as refused:
        create_app(modules=every_module())  # type: ignore[arg-type]

    status = main(["check-config"])

    errors = capsys.readouterr().err
    assert status == 1
    assert problem_lines(errors) == [str(problem) for problem in refused.value.problems]
    assert len(errors.splitlines()) <= 15
    for secret in (SECRET, STRIPE_KEY, "re_never_printed", "db-password"):
        assert secret not in errors


def test_check_config_passes_what_the_app_starts_with_and_summarises_each_module(
    service: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_environment(monkeypatch, PRODUCTION)
    create_app(modules=every_module())  # type: ignore[arg-type]

    status = main(["check-config"])

    output = capsys.readouterr().out
    assert status == 0
    rows = dict(line.split(None, 1) for line in output.splitlines())
    assert rows["environment"] == "production"
    assert rows["auth"].startswith("Clerk tokens from https://example.clerk.accounts.dev")
    assert rows["email"] == "resend email from Acme <hello@acme.example.com>"
    assert rows["billing"] == "Stripe; plans: pro"
    assert rows["jobs"].startswith("arq workers")
    for secret in (SECRET, STRIPE_KEY, "re_never_printed", "db-password"):
        assert secret not in output


def test_in_development_check_config_says_what_stands_in_for_each_provider(
    service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["check-config"])

    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert status == 0
    assert rows["auth"].startswith("dev tokens")
    assert rows["email"].startswith("console email")
    assert rows["jobs"].startswith("in-process")
    assert rows["ai"].startswith("no provider key")


def test_the_json_format_is_one_line_with_the_problems(
    service: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_environment(monkeypatch, without("STRIPE_SECRET_KEY", "REDIS_URL"))

    status = main(["check-config", "--format", "json"])

    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert status == 1
    assert record["level"] == "CRITICAL"
    assert record["message"] == "Invalid configuration (2 problems)"
    assert {problem["variable"] for problem in record["problems"]} == {
        "REDIS_URL",
        "STRIPE_SECRET_KEY",
    }


def test_env_lists_the_variables_of_the_apps_modules_even_when_refused(
    service: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")

    status = main(["env", "--format", "json"])

    variables = {v["name"]: v for v in json.loads(capsys.readouterr().out)["variables"]}
    assert status == 0
    assert variables["STRIPE_SECRET_KEY"]["module"] == "billing"
    assert variables["STRIPE_SECRET_KEY"]["secret"] is True
    assert variables["AUTH_PROVIDER"]["required"][0]["environments"] == ["staging", "production"]
    assert variables["RESEND_API_KEY"]["required"][0]["when"] == [
        {"variable": "EMAIL_PROVIDER", "values": ["resend"], "prefix": None}
    ]
    assert variables["BILLING_PLANS"]["required"][0]["environments"] == ["staging", "production"]
    assert variables["OPENAI_API_KEY"]["required"][0]["when"][0]["prefix"] == "openai:"
    assert variables["SERVICE_NAME"]["module"] == "core"


def test_env_as_dotenv_sets_what_is_required_and_comments_out_the_rest(
    service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["env"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert "STRIPE_SECRET_KEY=" in lines
    assert "# DB_POOL_SIZE=10" in lines
    assert "# --- billing ---" in lines


def test_without_an_app_env_lists_the_cores_variables(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["env", "--format", "json"])

    names = {v["name"] for v in json.loads(capsys.readouterr().out)["variables"]}
    assert status == 0
    assert {"SECRET_KEY", "DATABASE_URL", "SENTRY_DSN"} <= names
    assert "STRIPE_SECRET_KEY" not in names
