"""The modules' variables live under OMNISTACK_: problems name them so, the host's stay its own."""

from __future__ import annotations

import pytest

from examples.existing_app.main import create_app
from examples.existing_app.omnistack import omnistack_modules
from omnistack_core import ConfigurationError, Installation, load_settings, settings_class_for


def problems(error: ConfigurationError) -> dict[str, str]:
    return {problem.variable: problem.message for problem in error.problems}


def test_settings_problems_name_the_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "local")
    monkeypatch.setenv("OMNISTACK_ENVIRONMENT", "production")
    monkeypatch.setenv("OMNISTACK_STRIPE_SECRET_KEY", "pk_live_not_a_secret_key")

    with pytest.raises(ConfigurationError) as raised:
        create_app()

    found = problems(raised.value)
    assert sorted(found) == [
        "OMNISTACK_AUTH_PROVIDER",
        "OMNISTACK_BILLING_PLANS",
        "OMNISTACK_BILLING_SUCCESS_URL",
        "OMNISTACK_STRIPE_SECRET_KEY",
        "OMNISTACK_STRIPE_WEBHOOK_SECRET",
    ]
    assert found["OMNISTACK_AUTH_PROVIDER"] == (
        "required with the auth module when OMNISTACK_ENVIRONMENT=production: supabase or clerk"
    )
    assert "pk_live_not_a_secret_key" not in str(raised.value)


def test_the_hosts_environment_does_not_reach_the_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")  # the app's own name for production
    monkeypatch.setenv("OMNISTACK_ENVIRONMENT", "development")

    app = create_app()

    assert Installation.of(app).settings.environment == "development"
    assert Installation.of(app).env_prefix == "OMNISTACK_"
    assert app.docs_url is None  # what the app itself does with its ENVIRONMENT=prod
    # Without the prefix the modules would read ENVIRONMENT=prod as production.
    with pytest.raises(ConfigurationError) as raised:
        load_settings(settings_class_for(omnistack_modules()), env_file=None)
    assert "required with the auth module when ENVIRONMENT=production" in str(raised.value)
