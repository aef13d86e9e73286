"""create_app and the module protocol, shown with a tiny module written here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import Field, field_validator
from sqlalchemy import Column, Integer, MetaData, Table
from starlette.applications import Starlette

from omnistack_core import ConfigurationError, Module, Settings, create_app, load_settings
from omnistack_core.health import HealthCheck
from omnistack_core.testing import app_client


class GreeterSettings(Settings):
    greeting: str = "hello"
    """What the greeter says (``GREETING``)."""
    greeting_repeat: int = Field(default=1, ge=1, le=5)
    """How many times it says it (``GREETING_REPEAT``)."""


greeter_router = APIRouter(prefix="/greeter")


@greeter_router.get("/greeting")
async def greeting(request: Request) -> dict[str, str]:
    settings: GreeterSettings = request.app.state.settings
    return {"greeting": " ".join([settings.greeting] * settings.greeting_repeat)}


greeter_metadata = MetaData()
Table("greetings", greeter_metadata, Column("id", Integer, primary_key=True))


class Greeter(Module):
    """Everything a module can offer: settings, a router, a check, tables and a lifespan."""

    name = "greeter"
    settings_class = GreeterSettings

    def __init__(self, events: list[str] | None = None, *, healthy: bool = True) -> None:
        self.events = events if events is not None else []
        self.healthy = healthy

    def routers(self, settings: Settings) -> Sequence[APIRouter]:
        return [greeter_router]

    def health_checks(self, settings: Settings) -> Sequence[HealthCheck]:
        async def voice(app: Starlette) -> None:
            if not self.healthy:
                raise RuntimeError("lost its voice")

        return [HealthCheck("greeter", voice)]

    def metadata(self) -> Sequence[MetaData]:
        return [greeter_metadata]

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await app.state.database.ping()  # the database is open before modules start
        self.events.append(f"{self.name} start")
        yield
        self.events.append(f"{self.name} stop")

    def lifespan(self, app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[None]:
        return self._lifespan(app)


class Farewell(Greeter):
    name = "farewell"
    settings_class = None

    def routers(self, settings: Settings) -> Sequence[APIRouter]:
        return []

    def health_checks(self, settings: Settings) -> Sequence[HealthCheck]:
        return []


async def test_a_module_adds_its_settings_router_and_health_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GREETING", "bonjour")
    monkeypatch.setenv("GREETING_REPEAT", "2")

    async with app_client(create_app(modules=[Greeter()])) as client:
        greeting = await client.get("/api/v1/greeter/greeting")
        ready = await client.get("/api/v1/public/health/ready")

    assert greeting.json() == {"greeting": "bonjour bonjour"}
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"database", "greeter"}


async def test_a_failing_module_check_makes_the_service_unready() -> None:
    async with app_client(create_app(modules=[Greeter(healthy=False)])) as client:
        ready = await client.get("/api/v1/public/health/ready")
        live = await client.get("/api/v1/public/health")

    check = ready.json()["checks"]["greeter"]
    assert ready.status_code == 503
    assert (check["status"], check["error"]) == ("failed", "RuntimeError: lost its voice")
    assert live.status_code == 200


async def test_lifespans_start_in_order_and_stop_in_reverse_around_the_app_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("app start")
        yield
        events.append("app stop")

    app = create_app(modules=[Greeter(events), Farewell(events)], lifespan=app_lifespan)
    async with app_client(app):
        assert events == ["greeter start", "farewell start", "app start"]

    assert events[3:] == ["app stop", "farewell stop", "greeter stop"]


def test_module_settings_problems_are_listed_with_the_core_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GREETING_REPEAT", "9")
    monkeypatch.setenv("DB_POOL_SIZE", "none")

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[Greeter()])

    assert {problem.variable for problem in caught.value.problems} == {
        "GREETING_REPEAT",
        "DB_POOL_SIZE",
    }


def test_settings_of_several_modules_are_composed_into_one_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class ShouterSettings(Settings):
        volume: int = 3

    class Shouter(Module):
        name = "shouter"
        settings_class = ShouterSettings

    monkeypatch.setenv("VOLUME", "11")
    monkeypatch.setenv("GREETING", "hey")

    settings = create_app(modules=[Greeter(), Shouter()]).state.settings

    assert isinstance(settings, GreeterSettings)
    assert isinstance(settings, ShouterSettings)
    assert (settings.greeting, settings.volume) == ("hey", 11)


def test_given_settings_must_include_each_module_settings_class() -> None:
    with pytest.raises(ConfigurationError, match="GreeterSettings"):
        create_app(load_settings(), modules=[Greeter()])


def test_given_settings_of_the_module_class_are_used_as_they_are() -> None:
    settings = load_settings(GreeterSettings, greeting="hi")

    assert create_app(settings, modules=[Greeter()]).state.settings is settings


def test_a_module_installed_twice_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'greeter' is installed twice"):
        create_app(modules=[Greeter(), Greeter()])


def test_a_module_without_a_name_is_a_configuration_error() -> None:
    class Nameless(Module):
        pass

    with pytest.raises(ConfigurationError, match="Nameless has no name"):
        create_app(modules=[Nameless()])


def test_module_metadata_is_available_to_migrations() -> None:
    assert Greeter().metadata() == [greeter_metadata]
    assert Module().metadata() == ()


async def test_database_is_closed_at_shutdown() -> None:
    app = create_app()
    async with app_client(app):
        engine = app.state.database.engine
        await app.state.database.ping()
        assert engine.pool.checkedin() == 1

    assert engine.pool.checkedin() == 0


def test_an_app_without_optional_modules_never_imports_provider_sdks(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from omnistack_core import create_app

        async def start_and_stop():
            app = create_app()
            async with app.router.lifespan_context(app):
                await app.state.database.ping()

        asyncio.run(start_and_stop())
        optional = ["stripe", "openai", "anthropic", "resend", "arq", "sentry_sdk", "redis"]
        print(",".join(name for name in optional if name in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("jwt", "resend", "jinja2", "stripe")),
    reason="needs the auth, email, console and billing extras",
)
def test_a_started_app_has_not_imported_what_it_has_not_used_yet(tmp_path: Path) -> None:
    # What a generated service pays for before its first request: not the Resend SDK or
    # Jinja (first email, first console page), nor Clerk's verifier when Supabase signs in.
    script = textwrap.dedent(
        """
        import asyncio, sys
        from omnistack_core import create_app
        from omnistack_core.auth import AuthModule
        from omnistack_core.console import ConsoleModule
        from omnistack_core.email import EmailModule

        async def start_and_stop():
            app = create_app(modules=[AuthModule(), EmailModule(), ConsoleModule()])
            async with app.router.lifespan_context(app):
                await app.state.database.ping()

        asyncio.run(start_and_stop())
        unused = ["resend", "jinja2", "omnistack_core.auth.clerk", "sentry_sdk"]
        print(",".join(name for name in unused if name in sys.modules))
        """
    )
    env = {
        **os.environ,
        "AUTH_PROVIDER": "supabase",
        "SUPABASE_PROJECT_URL": "https://project.supabase.invalid",
        "EMAIL_PROVIDER": "resend",
        "RESEND_API_KEY": "re_test",
        "EMAIL_FROM": "Tests <tests@example.com>",
    }
    env.pop("SENTRY_DSN", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[-1:] == [""]  # the last line; log lines come before


def test_importing_the_auth_module_does_not_import_httpx(tmp_path: Path) -> None:
    script = "import sys, omnistack_core.auth; print('httpx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_importing_omnistack_core_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    # SQLAlchemy is the largest import of a cold start; it loads when the app starts.
    script = (
        "import sys, omnistack_core; omnistack_core.create_app(); "
        "print('sqlalchemy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_module_settings_validators_of_one_name_are_refused() -> None:
    class LeftSettings(Settings):
        left_secret: str = "x"

        @field_validator("left_secret")
        @classmethod
        def _check_secret(cls, value: str) -> str:
            return value

    class RightSettings(Settings):
        right_secret: str = "y"

        @field_validator("right_secret")
        @classmethod
        def _check_secret(cls, value: str) -> str:
            return value

    class Left(Module):
        name = "left"
        settings_class = LeftSettings

    class Right(Module):
        name = "right"
        settings_class = RightSettings

    with pytest.raises(ConfigurationError) as caught:
        create_app(modules=[Left(), Right()])

    [problem] = caught.value.problems
    assert problem.variable == "modules"
    assert "LeftSettings and RightSettings both define a validator _check_secret" in problem.message
