from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, field_validator
from sqlalchemy.engine import make_url

from omnistack_core import (
    ConfigurationError,
    ModuleSettings,
    Settings,
    When,
    load_settings,
    required,
)
from omnistack_core.module_settings import field_descriptions
from omnistack_core.settings import DEVELOPMENT_DATABASE_URL, secret_values

LONG_SECRET = "k" * 40
SHORT_SECRET = "short-but-secret"
DB_PASSWORD = "db-pass-never-shown"


class MailSettings(ModuleSettings):
    module = "mail"

    mail_provider: str | None = None
    smtp_host: str | None = None

    _mail_smtp_host_required = required(
        "smtp_host", module="mail", when=[When("mail_provider", "smtp")]
    )


def problems_of(error: ConfigurationError) -> dict[str, str]:
    return {problem.variable: problem.message for problem in error.problems}


def test_development_needs_nothing_and_defaults_to_a_sqlite_file() -> None:
    settings = load_settings()

    assert settings.environment == "development"
    assert settings.database_url.get_secret_value() == DEVELOPMENT_DATABASE_URL
    assert len(settings.secret_key.get_secret_value()) >= 32


def test_development_without_a_secret_key_gets_a_fresh_random_one_each_time() -> None:
    assert load_settings().secret_key != load_settings().secret_key


def test_production_with_what_the_guide_requires_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{DB_PASSWORD}@db:5432/app?sslmode=require")
    monkeypatch.setenv("DB_POOL_SIZE", "20")
    monkeypatch.setenv("DB_USE_NULL_POOL", "false")

    settings = load_settings()

    url = make_url(settings.database_url.get_secret_value())
    assert url.drivername == "postgresql+asyncpg"
    assert url.query["ssl"] == "require"
    assert settings.db_pool_size == 20


def test_every_problem_is_reported_at_once_without_secret_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", SHORT_SECRET)
    monkeypatch.setenv("DB_POOL_SIZE", "lots")
    monkeypatch.setenv("SENTRY_TRACES_SAMPLE_RATE", "2")
    monkeypatch.setenv("REDIS_URL", "http://cache:6379")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    problems = problems_of(caught.value)
    assert set(problems) == {
        "SECRET_KEY",
        "DATABASE_URL",
        "DB_POOL_SIZE",
        "SENTRY_TRACES_SAMPLE_RATE",
        "REDIS_URL",
    }
    assert "at least 32 characters" in problems["SECRET_KEY"]
    assert "required when ENVIRONMENT=production" in problems["DATABASE_URL"]
    assert "integer" in problems["DB_POOL_SIZE"]
    assert SHORT_SECRET not in str(caught.value)
    assert "5 problems" in str(caught.value)


def test_an_invalid_environment_is_reported_with_the_other_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prd")
    monkeypatch.setenv("DB_POOL_SIZE", "0")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    problems = problems_of(caught.value)
    assert set(problems) == {"ENVIRONMENT", "DB_POOL_SIZE"}
    assert "'production'" in problems["ENVIRONMENT"]
    assert "greater than or equal to 1" in problems["DB_POOL_SIZE"]


@pytest.mark.parametrize("environment", ["test", "staging", "production"])
def test_outside_development_secret_key_and_database_url_are_required(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    problems = problems_of(caught.value)
    assert set(problems) == {"SECRET_KEY", "DATABASE_URL"}
    assert problems["SECRET_KEY"].startswith(f"required when ENVIRONMENT={environment}: ")
    assert "secrets.token_urlsafe(48)" in problems["SECRET_KEY"]
    assert problems["DATABASE_URL"].startswith(f"required when ENVIRONMENT={environment}: ")


def test_a_bad_database_url_is_reported_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{DB_PASSWORD}@db/app?sslmode=always")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert "sslmode='always'" in problems_of(caught.value)["DATABASE_URL"]
    assert DB_PASSWORD not in str(caught.value)


def test_environment_is_read_case_insensitively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "Staging")
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")

    assert load_settings().environment == "staging"


@pytest.mark.parametrize(
    ("given", "read"), [("prod", "production"), ("Dev", "development"), ("stage", "staging")]
)
def test_the_common_short_environment_names_are_read_as_the_long_ones(
    monkeypatch: pytest.MonkeyPatch, given: str, read: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", given)

    settings = load_settings(secret_key=LONG_SECRET, database_url="postgres://u:p@h/db")

    assert settings.environment == read


def test_the_core_reads_none_of_the_modules_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    monkeypatch.setenv("AUTH_PROVIDER", "dev")
    monkeypatch.setenv("EMAIL_PROVIDER", "resend")

    settings = load_settings()

    assert not {"auth_provider", "email_provider", "stripe_secret_key"} & set(Settings.model_fields)
    assert settings.environment == "production"


def test_a_prefix_reads_every_variable_under_it_and_names_it_in_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")  # the host app's, not ours
    monkeypatch.setenv("OMNI_ENVIRONMENT", "staging")
    monkeypatch.setenv("OMNI_DB_POOL_SIZE", "3")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(env_prefix="OMNI_")

    assert set(problems_of(caught.value)) == {"OMNI_SECRET_KEY", "OMNI_DATABASE_URL"}
    assert problems_of(caught.value)["OMNI_DATABASE_URL"].startswith(
        "required when OMNI_ENVIRONMENT=staging"
    )


def test_a_prefix_names_the_variable_a_condition_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_PROVIDER", "console")  # the host app's, not ours
    monkeypatch.setenv("OMNI_MAIL_PROVIDER", "smtp")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(MailSettings, env_prefix="OMNI_")

    assert problems_of(caught.value) == {
        "OMNI_SMTP_HOST": "required with the mail module when OMNI_MAIL_PROVIDER=smtp"
    }


def test_redis_url_must_be_a_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://cache:6379")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert set(problems_of(caught.value)) == {"REDIS_URL"}


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # Platforms often define a variable with an empty value rather than leaving it out.
    monkeypatch.setenv("DB_POOL_SIZE", "")
    monkeypatch.setenv("SENTRY_DSN", "")

    settings = load_settings()

    assert settings.db_pool_size == 10
    assert settings.sentry_dsn is None


def test_dotenv_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, isolated_environment: Path
) -> None:
    (isolated_environment / ".env").write_text("SERVICE_NAME=from-dotenv\nDB_POOL_SIZE=7\n")
    monkeypatch.setenv("DB_POOL_SIZE", "9")

    settings = load_settings()

    assert settings.service_name == "from-dotenv"
    assert settings.db_pool_size == 9


def test_secrets_never_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_never_printed")
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{DB_PASSWORD}@db/app")

    settings = load_settings()

    assert "sk_live_never_printed" not in repr(settings)
    assert DB_PASSWORD not in repr(settings)


def test_secret_values_include_decoded_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:p%40ss@cache:6379/0")

    values = secret_values(load_settings())

    assert "p@ss" in values
    assert "redis://:p%40ss@cache:6379/0" in values


def test_migrations_use_the_direct_url_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@pooler:6543/app")
    monkeypatch.setenv("DATABASE_DIRECT_URL", "postgres://u:p@db:5432/app")

    settings = load_settings()

    assert make_url(settings.migration_database_url.get_secret_value()).host == "db"
    assert make_url(settings.database_url.get_secret_value()).host == "pooler"


def test_settings_subclass_adds_variables_and_keeps_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class GreeterSettings(Settings):
        greeting: str = "hello"

    monkeypatch.setenv("GREETING", "bonjour")
    monkeypatch.setenv("DB_POOL_SIZE", "-1")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(GreeterSettings)
    assert set(problems_of(caught.value)) == {"DB_POOL_SIZE"}

    monkeypatch.delenv("DB_POOL_SIZE")
    assert load_settings(GreeterSettings).greeting == "bonjour"


@pytest.mark.parametrize(
    "dsn", ["not a dsn", "https://o1.ingest.sentry.io/123", "https://key@o1.ingest.sentry.io/"]
)
def test_a_malformed_sentry_dsn_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, dsn: str
) -> None:
    monkeypatch.setenv("SENTRY_DSN", dsn)

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert set(problems_of(caught.value)) == {"SENTRY_DSN"}
    assert dsn not in str(caught.value)


def test_a_well_formed_sentry_dsn_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://abc123@o42.ingest.us.sentry.io/4501234")

    assert load_settings().sentry_dsn is not None


def test_forwarded_allow_ips_takes_addresses_and_networks_and_refuses_a_host_name() -> None:
    trusted = load_settings(forwarded_allow_ips="10.0.0.0/8, fd00::1,127.0.0.1")

    with pytest.raises(ConfigurationError, match=r"FORWARDED_ALLOW_IPS: 'proxy\.internal' is not"):
        load_settings(forwarded_allow_ips="10.0.0.0/8,proxy.internal")
    assert trusted.forwarded_allow_ips == "10.0.0.0/8, fd00::1,127.0.0.1"


class PlansSettings(Settings):
    """A module's JSON setting, as BILLING_PLANS and AI_PRICES are."""

    shop_plans: dict[str, int] = Field(default_factory=dict)
    shop_region: str = "eu"

    @field_validator("shop_region")
    @classmethod
    def _shop_region(cls, value: str) -> str:
        if value not in ("eu", "us"):
            raise ValueError("must be eu or us")
        return value


def test_a_json_setting_that_is_not_json_is_named_beside_every_other_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_PLANS", "{pro: 5")
    monkeypatch.setenv("SHOP_REGION", "mars")
    monkeypatch.setenv("DB_POOL_SIZE", "0")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(PlansSettings, env_file=None)

    problems = {problem.variable: problem.message for problem in caught.value.problems}
    assert problems["SHOP_PLANS"] == "must be valid JSON"
    assert problems["SHOP_REGION"] == "must be eu or us"
    assert "DB_POOL_SIZE" in problems
    assert "environment" not in problems


def test_a_json_setting_is_decoded_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_PLANS", '{"pro": 5}')

    assert load_settings(PlansSettings, env_file=None).shop_plans == {"pro": 5}


def test_a_json_settings_validator_error_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_PLANS", '{"pro": "five"}')

    with pytest.raises(ConfigurationError) as caught:
        load_settings(PlansSettings, env_file=None)

    [problem] = caught.value.problems
    assert problem.variable == "SHOP_PLANS"


def test_omnistack_env_file_turns_off_or_replaces_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    (tmp_path / ".env").write_text("REDIS_URL=redis://developers-redis:6379/0\n")
    (tmp_path / "ci.env").write_text("REDIS_URL=redis://ci-redis:6379/0\n")

    def redis() -> str | None:
        url = load_settings().redis_url
        return None if url is None else url.get_secret_value()

    read_by_default = redis()
    monkeypatch.setenv("OMNISTACK_ENV_FILE", "")
    turned_off = redis()
    monkeypatch.setenv("OMNISTACK_ENV_FILE", "ci.env")
    replaced = redis()

    assert read_by_default == "redis://developers-redis:6379/0"
    assert turned_off is None
    assert replaced == "redis://ci-redis:6379/0"


def test_field_descriptions_are_the_docstrings_under_the_fields_of_a_class_and_its_bases() -> None:
    class ParcelSettings(ModuleSettings):
        module = "parcel"

        parcel_region: str = "eu"
        """Where parcels are
        sent from."""
        parcel_weight_limit: int = Field(default=30, description="Kilograms per parcel.")
        """Not read: the field has a description of its own."""
        parcel_undocumented: bool = False

    class ExpressSettings(ParcelSettings):
        parcel_express: bool = True
        """Send by air."""

    descriptions = field_descriptions(ExpressSettings)

    assert descriptions["parcel_region"] == "Where parcels are\nsent from."
    assert descriptions["parcel_weight_limit"] == "Kilograms per parcel."
    assert descriptions["parcel_express"] == "Send by air."
    assert descriptions["environment"].startswith("Where the service runs")
    assert "parcel_undocumented" not in descriptions
