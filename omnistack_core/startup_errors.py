"""Start-up errors that read cleanly: what to fix, in one block, without a traceback.

A misconfigured service says so wherever it starts (uvicorn, ``omnistack dev``, the arq
worker, the migration script): the problem list as one text block, or one JSON line with a
``problems`` array where logs are JSON. The traceback follows only at ``LOG_LEVEL=DEBUG``.

Two paths lead here. Settings are validated while the app is built, at import, so the error
reaches the interpreter's top level: :func:`exit_cleanly_when_uncaught` puts a hook there.
Failures inside the lifespan reach the server, which would log the traceback as one long
line: :class:`StartupFailureMiddleware` reports them instead and tells the server start-up
failed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from omnistack_core.errors import ConfigurationError, MissingDependencyError
from omnistack_core.observability.logs import JsonFormatter
from omnistack_core.settings import default_env_file

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from omnistack_core.settings import Settings

STARTUP_ERRORS = (ConfigurationError, MissingDependencyError)
"""What a start-up reports as a problem list rather than a crash."""

logger = logging.getLogger("omnistack.startup")


class OutputFormat:
    """How to report: JSON or text, and whether to add the traceback.

    Read from the settings when they loaded, else from the raw variables (the environment,
    then ``.env`` or ``OMNISTACK_ENV_FILE``), since the error may be that the settings do
    not load.
    """

    def __init__(
        self, *, as_json: bool, debug: bool, service: str = "", environment: str = ""
    ) -> None:
        self.as_json = as_json
        self.debug = debug
        self.service = service
        self.environment = environment

    @classmethod
    def of(cls, settings: Settings) -> OutputFormat:
        """The format the loaded ``settings`` log in."""
        return cls(
            as_json=settings.logs_as_json,
            debug=settings.log_level == "DEBUG",
            service=settings.service_name,
            environment=settings.environment,
        )

    @classmethod
    def from_environment(cls) -> OutputFormat:
        """The format the raw variables ask for; JSON everywhere but development."""
        env_file = default_env_file()
        values = {**(_dotenv(Path(env_file)) if env_file else {}), **os.environ}
        environment = values.get("ENVIRONMENT", "development").strip().lower() or "development"
        log_format = values.get("LOG_FORMAT", "").strip().lower()
        as_json = log_format == "json" or (not log_format and environment != "development")
        return cls(
            as_json=as_json,
            debug=values.get("LOG_LEVEL", "").strip().upper() == "DEBUG",
            service=values.get("SERVICE_NAME", "omnistack-api"),
            environment=environment,
        )


def render(error: BaseException, output: OutputFormat) -> str:
    """``error`` as a text block, or as one JSON line with a ``problems`` array."""
    if isinstance(error, ConfigurationError):
        count = len(error.problems)
        headline = f"Invalid configuration ({count} problem{'s' if count != 1 else ''})"
        problems = [{"variable": p.variable, "message": p.message} for p in error.problems]
        lines = [f"{headline}:", *(f"  - {problem}" for problem in error.problems)]
        lines.append("Set these variables (environment or .env); `omnistack check-config` checks.")
    else:
        headline = f"Cannot start: {error}"
        problems = []
        lines = [headline]
    details = "".join(traceback.format_exception(error)) if output.debug else None
    if output.as_json:
        formatter = JsonFormatter(output.service, output.environment)
        extras: dict[str, Any] = {"problems": problems} if problems else {}
        return formatter.render(
            logger.name,
            "CRITICAL",
            time.time(),
            headline,
            request_id=None,
            extras=extras,
            exception=details,
        )
    return "\n".join(lines) if details is None else f"{details}\n" + "\n".join(lines)


def report(error: BaseException, output: OutputFormat, stream: TextIO | None = None) -> None:
    """Write ``error`` as :func:`render` renders it, to standard error by default."""
    stream = stream or sys.stderr
    stream.write(render(error, output) + "\n")
    stream.flush()


def exit_cleanly_when_uncaught(error: BaseException) -> None:
    """Make ``error``, about to be raised at start-up, end the process readably.

    Raised while the app is built at import (``uvicorn app.main:app``, arq importing the
    worker settings), it reaches the top of the interpreter, which would print a traceback;
    the hook this installs prints :func:`render`'s block instead and leaves every other
    exception to the hook before it. In a child process (uvicorn's reloader and workers)
    the traceback is printed by ``multiprocessing`` itself, so there the block is printed
    now and the child exits with status 1.
    """
    if multiprocessing.parent_process() is not None:
        report(error, OutputFormat.from_environment())
        raise SystemExit(1) from None
    previous = sys.excepthook
    if getattr(previous, "omnistack_startup_hook", False):
        return

    def hook(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        if isinstance(value, STARTUP_ERRORS):
            report(value, OutputFormat.from_environment())
        else:
            previous(kind, value, trace)

    hook.omnistack_startup_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook


class StartupFailureMiddleware:
    """Reports an exception raised while the app starts, and tells the server it failed.

    Without it Starlette hands the server the traceback's text, which uvicorn logs as one
    record (one line of escaped newlines in text format). Pure ASGI: only the lifespan scope
    is looked at; requests pass straight through.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.output = OutputFormat.of(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass requests through; run the lifespan, reporting a failed start-up."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        started = False

        async def forward(message: Message) -> None:
            nonlocal started
            if message["type"] == "lifespan.startup.failed":
                return  # replaced by ours, without the traceback's text
            started = started or message["type"] == "lifespan.startup.complete"
            await send(message)

        try:
            await self.app(scope, receive, forward)
        except Exception as exc:
            if started:
                raise  # a failed shutdown: the server reports it
            self._report(exc)
            await send({"type": "lifespan.startup.failed", "message": ""})

    def _report(self, error: Exception) -> None:
        if isinstance(error, STARTUP_ERRORS):
            report(error, self.output)
            return
        unreachable = _unreachable(self.settings, error)
        if unreachable is None:
            logger.critical("Start-up failed: %s: %s", type(error).__name__, error, exc_info=error)
        else:
            # What to check says more than a driver's traceback; DEBUG still shows it.
            trace = error if self.output.debug else None
            logger.critical("Start-up failed: %s", unreachable, exc_info=trace)


def _unreachable(settings: Settings, error: Exception) -> str | None:
    """One line for a database or Redis that does not answer, or None for anything else."""
    from omnistack_core.db.connection_errors import connection_problem  # noqa: PLC0415

    if _from_redis(error):
        return f"Redis does not answer ({error}); check REDIS_URL and that the server runs"
    return connection_problem(settings.database_url.get_secret_value(), error)


def _from_redis(error: BaseException) -> bool:
    # By name: redis-py is an optional extra, and its errors are not OSErrors.
    cause: BaseException | None = error
    while cause is not None:
        if any(
            kind.__module__ == "redis.exceptions"
            and kind.__name__ in ("ConnectionError", "TimeoutError")
            for kind in type(cause).__mro__
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _dotenv(path: Path) -> Mapping[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # noqa: PLC0415 - pydantic-settings brings python-dotenv

    return {key: value for key, value in dotenv_values(path).items() if value is not None}
