"""install(): modules in an app of someone else's, with its settings, database and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import SecretStr
from sqlalchemy import Column, Integer, MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette

from omnistack_core import (
    ConfigurationError,
    Installation,
    Module,
    ModuleNotRunningError,
    ModuleSettings,
    ProblemError,
    Requirement,
    Settings,
    When,
    create_app,
    install,
    load_settings,
    required,
    resource_of,
    settings_class_for,
)
from omnistack_core.module_settings import DEPLOYED
from omnistack_core.testing import app_client


class LedgerSettings(ModuleSettings):
    module = "ledger"

    ledger_mode: str | None = None
    """How entries are kept: ``memory`` or ``remote``."""
    ledger_url: str | None = None
    """Where the remote ledger is; required when ``LEDGER_MODE=remote``."""
    ledger_token: SecretStr | None = None
    """The ledger's API token."""

    _ledger_mode_required = required(
        "ledger_mode", module="ledger", environments=DEPLOYED, default="memory"
    )
    _ledger_url_required = required(
        "ledger_url", module="ledger", when=[When("ledger_mode", "remote")]
    )


class Ledger:
    """What the ledger module runs: entries, in a table of the app's database."""

    def __init__(self, settings: LedgerSettings, installation: Installation) -> None:
        self.settings = settings
        self.installation = installation
        self.closed = False

    async def count(self) -> int:
        async with self.installation.require_database().session() as session:
            return int(await session.scalar(text("SELECT count(*) FROM ledger_entries")) or 0)


ledger_metadata = MetaData()
Table("ledger_entries", ledger_metadata, Column("id", Integer, primary_key=True))
router = APIRouter(prefix="/ledger")


@router.get("/count")
async def count(request: Request) -> dict[str, int | str]:
    ledger = LedgerModule.of(request.app)
    return {"count": await ledger.count(), "mode": ledger.settings.ledger_mode or ""}


@router.get("/refused")
async def refused() -> None:
    raise ProblemError(402, "Pay first.", headers={"X-Reason": "unpaid"})


class LedgerModule(Module[LedgerSettings]):
    name = "ledger"
    settings_class = LedgerSettings

    def __init__(self, *, token_in_code: bool = False) -> None:
        self.token_in_code = token_in_code
        self.events: list[str] = []

    @classmethod
    def of(cls, app: Starlette) -> Ledger:
        return resource_of(app, cls.name, Ledger)

    def routers(self, settings: LedgerSettings) -> Sequence[APIRouter]:
        return [router]

    def metadata(self) -> Sequence[MetaData]:
        return [ledger_metadata]

    def requirements(self) -> Sequence[Requirement]:
        if self.token_in_code:
            return []
        return [Requirement("ledger_token", "ledger", when=(When("ledger_mode", "remote"),))]

    def lifespan(self, app: FastAPI, settings: LedgerSettings) -> AbstractAsyncContextManager[None]:
        return self._running(app, settings)

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: LedgerSettings) -> AsyncIterator[None]:
        installation = Installation.of(app)
        async with installation.require_database().engine.begin() as connection:
            await connection.run_sync(ledger_metadata.create_all)
        ledger = Ledger(settings, installation)
        installation.provide(self.name, ledger)
        self.events.append("started")
        yield
        ledger.closed = True
        self.events.append("stopped")


class AuditModule(Module):
    name = "audit"
    requires = ("ledger",)


class NotesModule(Module):
    name = "notes"


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    """The host app's own engine, disposed after the test as the app would."""
    own = create_async_engine("sqlite+aiosqlite:///./host.db")
    yield own
    await own.dispose()


def host_app(events: list[str]) -> FastAPI:
    """An app of its own: its lifespan keeps its own state, as apps do."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("host started")
        yield {"own": "state"}
        events.append("host stopped")

    app = FastAPI(lifespan=lifespan)

    @app.get("/own")
    async def own(request: Request) -> dict[str, str]:
        return {"own": request.state.own}

    return app


async def test_an_installed_module_runs_inside_the_apps_lifespan_on_its_database(
    monkeypatch: pytest.MonkeyPatch, engine: AsyncEngine
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")  # the host's own variable, in its own spelling
    monkeypatch.setenv("LEDGER_ENVIRONMENT", "test")
    events: list[str] = []
    app = host_app(events)
    module = LedgerModule()

    installation = install(
        app, [module], database=engine, prefix="/v2", env_prefix="LEDGER_", env_file=None
    )
    async with app_client(app) as client:
        counted = await client.get("/v2/ledger/count")
        own = await client.get("/own")
        events.append("served")

    assert counted.json() == {"count": 0, "mode": "memory"}
    assert own.json() == {"own": "state"}
    assert events == ["host started", "served", "host stopped"]
    assert module.events == ["started", "stopped"]
    assert installation.settings.environment == "test"
    assert Installation.of(app) is installation
    assert LedgerModule.of(app).closed


def test_the_modules_settings_are_refused_at_once_under_their_prefixed_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_ENVIRONMENT", "production")
    monkeypatch.setenv("LEDGER_LEDGER_MODE", "remote")
    engine = create_async_engine("sqlite+aiosqlite://")

    with pytest.raises(ConfigurationError) as refused:
        install(FastAPI(), [LedgerModule()], database=engine, env_prefix="LEDGER_", env_file=None)

    assert [(p.variable, p.message) for p in refused.value.problems] == [
        ("LEDGER_LEDGER_URL", "required with the ledger module when LEDGER_LEDGER_MODE=remote"),
        ("LEDGER_LEDGER_TOKEN", "required with the ledger module when LEDGER_LEDGER_MODE=remote"),
    ]
    assert [module.name for module in refused.value.modules] == ["ledger"]


def test_requirements_of_a_module_instance_apply_to_given_settings_too() -> None:
    given = LedgerSettings(environment="production", ledger_mode="remote", ledger_url="https://l")

    with pytest.raises(ConfigurationError) as refused:
        install(
            FastAPI(),
            [LedgerModule()],
            settings=given,
            database=create_async_engine("sqlite+aiosqlite://"),
        )
    installed = install(
        FastAPI(),
        [LedgerModule(token_in_code=True)],
        settings=given,
        database=create_async_engine("sqlite+aiosqlite://"),
    )

    assert [p.variable for p in refused.value.problems] == ["LEDGER_TOKEN"]
    assert installed.settings is given


def test_a_module_keeping_tables_needs_the_apps_database() -> None:
    with pytest.raises(ConfigurationError, match=r"the ledger module\(s\) keep tables"):
        install(FastAPI(), [LedgerModule()], env_file=None)


def test_a_module_whose_required_module_is_missing_is_refused_when_the_app_is_built() -> None:
    with pytest.raises(ConfigurationError) as refused:
        create_app(modules=[AuditModule()])

    assert [str(p) for p in refused.value.problems] == [
        "modules: the audit module needs the ledger module: install it too"
    ]


def test_modules_are_installed_in_one_call() -> None:
    app = FastAPI()
    engine = create_async_engine("sqlite+aiosqlite://")
    install(app, [LedgerModule()], database=engine, env_file=None)

    with pytest.raises(ConfigurationError, match="already installed"):
        install(app, [NotesModule()], env_file=None)


async def test_a_module_not_running_in_the_app_is_named_in_the_error() -> None:
    with pytest.raises(ModuleNotRunningError, match="the ledger module is not installed"):
        LedgerModule.of(FastAPI())
    app = create_app(modules=[AuditModule(), LedgerModule()])
    with pytest.raises(ModuleNotRunningError, match="the ledger module has not started"):
        LedgerModule.of(app)


async def test_without_the_librarys_handlers_a_problem_is_the_apps_own_http_error(
    engine: AsyncEngine,
) -> None:
    app = FastAPI()
    install(app, [LedgerModule()], database=engine, env_file=None)

    async with app_client(app) as client:
        response = await client.get("/api/v1/ledger/refused")

    assert response.status_code == 402
    assert response.json() == {"detail": "Pay first."}
    assert response.headers["x-reason"] == "unpaid"


def test_the_composed_class_validates_the_core_and_every_module_at_once() -> None:
    composed = settings_class_for([LedgerModule()], base=Settings)

    with pytest.raises(ConfigurationError) as refused:
        load_settings(composed, env_file=None, environment="production", ledger_mode="remote")

    assert {p.variable for p in refused.value.problems} == {
        "SECRET_KEY",
        "DATABASE_URL",
        "LEDGER_URL",
        "LEDGER_TOKEN",
    }


def test_two_requirements_of_one_field_that_would_hide_each_other_are_refused() -> None:
    with pytest.raises(TypeError, match="conflict"):

        class Clashing(ModuleSettings):
            module = "clash"
            token: str | None = None

            _clash_token_default = required(
                "token", module="clash", environments=DEPLOYED, default="x"
            )
            _clash_token_always = required("token", module="clash")


def test_a_condition_on_a_later_field_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match="must be declared before it"):

        class Backwards(ModuleSettings):
            module = "backwards"
            url: str | None = None
            mode: str | None = None

            _backwards_url_required = required("url", module="backwards", when=[When("mode", "on")])
