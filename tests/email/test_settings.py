from __future__ import annotations

from pathlib import Path

import pytest

from omnistack_core import ConfigurationError, create_app, load_settings
from omnistack_core.email import EmailModule, EmailSettings

PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "k" * 40,
    "DATABASE_URL": "postgres://u:p@db/app",
}


def problems(error: ConfigurationError) -> dict[str, str]:
    return {problem.variable: problem.message for problem in error.problems}


def environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_resend_without_its_key_and_a_sender_lists_both_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(monkeypatch, EMAIL_PROVIDER="resend")

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[EmailModule()])

    found = problems(caught.value)
    assert found["RESEND_API_KEY"] == "required with the email module when EMAIL_PROVIDER=resend"
    assert found["EMAIL_FROM"].startswith(
        "required with the email module when EMAIL_PROVIDER=resend"
    )
    assert len(caught.value.problems) == 2


def test_smtp_without_a_host_and_a_sender_lists_both_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(monkeypatch, EMAIL_PROVIDER="smtp", SMTP_USERNAME="mailer")

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[EmailModule()])

    found = problems(caught.value)
    assert found["SMTP_HOST"] == "required with the email module when EMAIL_PROVIDER=smtp"
    assert found["EMAIL_FROM"].startswith("required with the email module when EMAIL_PROVIDER=smtp")
    assert "SMTP_USERNAME and SMTP_PASSWORD go together" in found["SMTP_PASSWORD"]


def test_email_problems_are_listed_with_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, ENVIRONMENT="production", EMAIL_PROVIDER="resend")

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[EmailModule()])

    assert {"SECRET_KEY", "DATABASE_URL", "RESEND_API_KEY", "EMAIL_FROM"} <= set(
        problems(caught.value)
    )


def test_production_needs_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, **PRODUCTION)

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[EmailModule()])

    assert problems(caught.value) == {
        "EMAIL_PROVIDER": "required with the email module when ENVIRONMENT=production: "
        "resend or smtp"
    }


def test_the_memory_provider_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, **PRODUCTION, EMAIL_PROVIDER="memory")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert "only in development and test" in problems(caught.value)["EMAIL_PROVIDER"]


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_default_to_the_console(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    environment(
        monkeypatch, ENVIRONMENT=env, SECRET_KEY="k" * 40, DATABASE_URL="sqlite+aiosqlite://"
    )

    settings = load_settings(EmailSettings)

    assert settings.email_provider == "console"
    assert settings.email_from == "omnistack-api <noreply@example.com>"


def test_a_complete_resend_configuration_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(
        monkeypatch,
        **PRODUCTION,
        EMAIL_PROVIDER="resend",
        RESEND_API_KEY="re_live_key_0123456789",
        EMAIL_FROM="Acme <Hello@ACME.example.com>",
    )

    settings = load_settings(EmailSettings)

    assert settings.email_from == "Acme <Hello@acme.example.com>"
    assert settings.resend_api_url == "https://api.resend.com"


def test_an_invalid_sender_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, EMAIL_FROM="Acme <nope>")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert problems(caught.value)["EMAIL_FROM"].startswith(
        "must be an address like Acme <hello@acme.com>"
    )


def test_resend_api_url_must_be_https_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(
        monkeypatch,
        **PRODUCTION,
        EMAIL_PROVIDER="resend",
        RESEND_API_KEY="re_x",
        EMAIL_FROM="a@example.com",
        RESEND_API_URL="http://resend.internal",
    )

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert "https://" in problems(caught.value)["RESEND_API_URL"]


def test_smtp_tls_modes_exclude_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(
        monkeypatch,
        EMAIL_PROVIDER="smtp",
        SMTP_HOST="smtp.example.com",
        EMAIL_FROM="a@example.com",
        SMTP_TLS="true",
        SMTP_STARTTLS="true",
    )

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert "exclude each other" in problems(caught.value)["SMTP_TLS"]


def test_smtp_defaults_follow_the_tls_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, EMAIL_PROVIDER="smtp", SMTP_HOST="smtp.example.com")
    environment(monkeypatch, EMAIL_FROM="a@example.com")

    starttls = load_settings(EmailSettings)
    monkeypatch.setenv("SMTP_TLS", "true")
    implicit = load_settings(EmailSettings)

    assert (starttls.resolved_smtp_port, starttls.resolved_smtp_starttls) == (587, True)
    assert (implicit.resolved_smtp_port, implicit.resolved_smtp_starttls) == (465, False)


def test_a_password_in_clear_text_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(
        monkeypatch,
        **PRODUCTION,
        EMAIL_PROVIDER="smtp",
        SMTP_HOST="smtp.example.com",
        SMTP_USERNAME="mailer",
        SMTP_PASSWORD="hunter2-secret",
        SMTP_STARTTLS="false",
        EMAIL_FROM="a@example.com",
    )

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert "clear text" in problems(caught.value)["SMTP_TLS"]
    assert "hunter2-secret" not in str(caught.value)


def test_the_webhook_secret_must_be_a_svix_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(monkeypatch, RESEND_WEBHOOK_SECRET="whsec_not base64!")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert problems(caught.value)["RESEND_WEBHOOK_SECRET"] == (
        "must be the webhook's signing secret: whsec_ followed by base64"
    )
    assert "not base64!" not in str(caught.value)


def test_the_templates_dir_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment(monkeypatch, EMAIL_TEMPLATES_DIR=str(tmp_path / "missing"))

    with pytest.raises(ConfigurationError) as caught:
        load_settings(EmailSettings)

    assert problems(caught.value)["EMAIL_TEMPLATES_DIR"] == "must be an existing directory"


def test_app_emails_is_the_templates_dir_when_it_exists(isolated_environment: Path) -> None:
    before = load_settings(EmailSettings).templates_dir
    (isolated_environment / "app" / "emails").mkdir(parents=True)

    assert before is None
    assert load_settings(EmailSettings).templates_dir == Path("app/emails")


def test_secrets_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    environment(
        monkeypatch,
        EMAIL_PROVIDER="smtp",
        SMTP_HOST="smtp.example.com",
        SMTP_USERNAME="mailer",
        SMTP_PASSWORD="hunter2-secret",
        RESEND_WEBHOOK_SECRET="whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
        EMAIL_FROM="a@example.com",
    )

    settings = load_settings(EmailSettings)

    assert "hunter2-secret" not in repr(settings)
    assert "MDEyMzQ1Njc4OWFiY2RlZg" not in repr(settings)
