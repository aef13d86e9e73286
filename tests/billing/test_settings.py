"""Billing settings: what production requires, plans from the environment, no secret echoed."""

from __future__ import annotations

import pytest

from omnistack_core.billing import BillingSettings, Plan
from omnistack_core.errors import ConfigurationError
from omnistack_core.settings import load_settings

PRODUCTION = {
    "environment": "production",
    "secret_key": "s" * 40,
    "database_url": "postgresql://u:p@db.example.com/app",
}


def problems(**values: object) -> dict[str, str]:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(BillingSettings, env_file=None, **values)
    return {problem.variable: problem.message for problem in raised.value.problems}


def test_production_lists_every_missing_billing_variable() -> None:
    found = problems(**PRODUCTION)

    assert set(found) == {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_SUCCESS_URL"}
    assert "sk_" in found["STRIPE_SECRET_KEY"]
    assert "whsec_" in found["STRIPE_WEBHOOK_SECRET"]


def test_malformed_values_are_named_and_never_echoed() -> None:
    found = problems(
        **PRODUCTION,
        stripe_secret_key="pk_live_publishable_not_secret",
        stripe_webhook_secret="whsec_good_secret_value,not-a-secret-value",
        billing_success_url="http://app.example.com/done",
        stripe_api_base="http://proxy.internal",
    )

    assert set(found) == {
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "BILLING_SUCCESS_URL",
        "STRIPE_API_BASE",
    }
    text = " ".join(found.values())
    assert "pk_live_publishable_not_secret" not in text
    assert "not-a-secret-value" not in text


def test_development_needs_no_stripe_variables() -> None:
    settings = load_settings(BillingSettings, env_file=None)

    assert settings.stripe_secret_key is None
    assert settings.webhook_secrets == []
    assert settings.stripe_api_base == "https://api.stripe.com"


def test_plans_and_several_webhook_secrets_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "BILLING_PLANS", '{"pro": "price_123", "team": {"price": "price_456", "trial_days": 14}}'
    )
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_new_secret_abc, whsec_old_secret_def")

    settings = load_settings(BillingSettings, env_file=None)

    assert settings.billing_plans == {
        "pro": Plan(name="pro", price="price_123"),
        "team": Plan(name="team", price="price_456", trial_days=14),
    }
    assert settings.webhook_secrets == ["whsec_new_secret_abc", "whsec_old_secret_def"]


@pytest.mark.parametrize(
    ("plans", "expected"),
    [
        ({"pro": "prod_123"}, "plan 'pro'"),
        ({"Pro Plan": "price_123"}, "plan 'Pro Plan'"),
        ({"pro": {"price": "price_1", "trial_days": -1}}, "trial_days"),
        ({"pro": {"price": "price_1", "seats": 3}}, "seats"),
        ({"pro": 12}, "must be a price id"),
    ],
)
def test_a_malformed_plan_is_reported_by_name(plans: dict[str, object], expected: str) -> None:
    found = problems(billing_plans=plans)

    assert expected in found["BILLING_PLANS"]


def test_every_modules_rules_hold_when_all_modules_are_composed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = pytest.importorskip("omnistack_core.email")
    jobs = pytest.importorskip("omnistack_core.jobs")
    from omnistack_core import create_app  # noqa: PLC0415
    from omnistack_core.auth import AuthModule  # noqa: PLC0415
    from omnistack_core.billing import BillingModule  # noqa: PLC0415

    for name, value in {
        **{key.upper(): str(value) for key, value in PRODUCTION.items()},
        "AUTH_PROVIDER": "supabase",
        "SUPABASE_PROJECT_URL": "https://abc.supabase.co",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "EMAIL_PROVIDER": "resend",
        "RESEND_API_KEY": "re_123456789",
        "EMAIL_FROM": "Acme <hello@acme.example.com>",
        "RESEND_WEBHOOK_SECRET": "not-a-svix-secret",
        "STRIPE_SECRET_KEY": "sk_live_0123456789",
        "BILLING_SUCCESS_URL": "https://app.example.com/done",
    }.items():
        monkeypatch.setenv(name, value)
    modules = [AuthModule(), jobs.JobsModule(), email.EmailModule(), BillingModule()]

    for order in (modules, list(reversed(modules))):
        with pytest.raises(ConfigurationError) as raised:
            create_app(modules=order)
        assert {problem.variable for problem in raised.value.problems} == {
            "RESEND_WEBHOOK_SECRET",
            "STRIPE_WEBHOOK_SECRET",
            "BILLING_PLANS",
        }


def test_billing_without_auth_is_refused_when_the_app_is_built() -> None:
    from omnistack_core import create_app  # noqa: PLC0415
    from omnistack_core.billing import BillingModule  # noqa: PLC0415

    with pytest.raises(ConfigurationError) as refused:
        create_app(modules=[BillingModule()])

    assert [str(problem) for problem in refused.value.problems] == [
        "modules: the billing module needs the auth module: install it too"
    ]


def test_settings_given_to_install_are_checked_against_the_modules_under_its_prefix() -> None:
    from fastapi import FastAPI  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    from omnistack_core import install  # noqa: PLC0415
    from omnistack_core.auth import AuthModule, AuthSettings  # noqa: PLC0415
    from omnistack_core.billing import BillingModule  # noqa: PLC0415

    class ModulesSettings(AuthSettings, BillingSettings):
        """The app's own class for the modules' settings."""

    # Valid for the classes; the billing module without plans in code also needs plans.
    given = load_settings(
        ModulesSettings,
        env_file=None,
        environment="production",
        auth_provider="supabase",
        supabase_project_url="https://abc.supabase.co",
        stripe_secret_key="sk_live_0123456789",
        stripe_webhook_secret="whsec_0123456789abcdef",
        billing_success_url="https://app.example.com/done",
    )
    engine = create_async_engine("sqlite+aiosqlite://")

    with pytest.raises(ConfigurationError) as raised:
        install(
            FastAPI(),
            [AuthModule(), BillingModule()],
            settings=given,
            database=engine,
            env_prefix="OMNI_",
        )

    assert {problem.variable: problem.message for problem in raised.value.problems} == {
        "OMNI_BILLING_PLANS": "required with the billing module when "
        'OMNI_ENVIRONMENT=production: the plans sold, e.g. {"pro": "price_123"}'
    }
