from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from omnistack_core import ConfigurationError, create_app, load_settings
from omnistack_core.auth import AuthModule, AuthSettings


def problems(error: ConfigurationError) -> dict[str, str]:
    return {problem.variable: problem.message for problem in error.problems}


@pytest.mark.parametrize("environment", ["development", "test"])
def test_without_a_provider_development_and_test_use_dev_tokens(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///./t.db")

    assert load_settings(AuthSettings).auth_provider == "dev"


def test_production_with_the_auth_module_needs_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/app")

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[AuthModule()])

    assert "supabase or clerk" in problems(caught.value)["AUTH_PROVIDER"]


def test_auth_provider_requires_its_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PROVIDER", "clerk")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(AuthSettings)

    assert problems(caught.value) == {
        "CLERK_ISSUER_URL": "required with the auth module when AUTH_PROVIDER=clerk"
    }


def test_issuer_urls_must_be_https_outside_development_and_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("AUTH_PROVIDER", "clerk")
    monkeypatch.setenv("CLERK_ISSUER_URL", "http://clerk.example.com")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(AuthSettings)

    assert "https://" in problems(caught.value)["CLERK_ISSUER_URL"]


def test_the_auth_settings_need_neither_a_database_nor_a_secret_key_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_PROVIDER", "supabase")
    monkeypatch.setenv("SUPABASE_PROJECT_URL", "https://abc.supabase.co/")

    settings = load_settings(AuthSettings)

    assert settings.supabase_project_url == "https://abc.supabase.co"
    assert "database_url" not in AuthSettings.model_fields


@pytest.mark.parametrize("environment", ["test", "staging"])
def test_dev_tokens_outside_development_need_the_secret_key(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("AUTH_PROVIDER", "dev")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(AuthSettings)

    assert problems(caught.value)["SECRET_KEY"].startswith(
        "required with the auth module when AUTH_PROVIDER=dev"
    )


def test_dev_tokens_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_PROVIDER", "dev")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(AuthSettings)

    assert "refused in production" in problems(caught.value)["AUTH_PROVIDER"]


def test_authorized_parties_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CLERK_AUTHORIZED_PARTIES", "https://app.example.com/, https://admin.example.com"
    )

    assert load_settings(AuthSettings).clerk_authorized_parties == [
        "https://app.example.com",
        "https://admin.example.com",
    ]


def test_the_clerk_pem_key_must_be_a_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_JWT_KEY", "not a key")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(AuthSettings)

    assert "PEM public key" in problems(caught.value)["CLERK_JWT_KEY"]


def test_a_pem_key_with_escaped_newlines_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    monkeypatch.setenv("CLERK_JWT_KEY", pem.replace("\n", "\\n"))

    assert load_settings(AuthSettings).clerk_jwt_key == pem.strip()


def test_importing_auth_without_its_extra_names_the_install_command(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["jwt"] = None  # as if the auth extra were not installed
        try:
            import omnistack_core.auth
        except ImportError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "pip install 'omnistack-core[auth]'" in result.stdout
