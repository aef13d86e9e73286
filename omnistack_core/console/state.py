"""What the console keeps while the app runs: its key, templates, spent links, recent samples."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette

from omnistack_core.console.audit import mask_text
from omnistack_core.console.settings import ConsoleSettings
from omnistack_core.installation import Installation, resource_of

if TYPE_CHECKING:
    from jinja2 import Environment
    from redis.asyncio import Redis

# The sections in navigation order: (module whose installation shows it, path, label).
NAVIGATION = (
    ("", "", "Overview"),
    ("jobs", "/jobs", "Jobs"),
    ("billing", "/billing", "Billing"),
    ("email", "/email", "Email"),
    ("ai", "/ai", "AI"),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the service, kept for the overview's recent history.

    Attributes:
        at: When (Unix time).
        readiness: The readiness status then.
        failing: The checks that did not pass.
        errors_5xx: 5xx responses this process had served by then (None without metrics).
    """

    at: float
    readiness: str
    failing: tuple[str, ...]
    errors_5xx: float | None


def _when(value: float | datetime | None) -> str:
    """A time as operators read it in every time zone: UTC, to the second."""
    if value is None:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class ConsoleState:
    """The console of one running app: ``ConsoleState.of(app)``."""

    def __init__(
        self,
        settings: ConsoleSettings,
        service_name: str,
        secret_key: str,
        sections: tuple[str, ...],
        redis: Redis | None,
    ) -> None:
        self.settings = settings
        self.service_name = service_name
        self.secret_key = secret_key
        self.sections = sections
        self.redis = redis
        self.history: deque[Sample] = deque(maxlen=30)
        self._spent: dict[str, float] = {}

    @cached_property
    def templates(self) -> Environment:
        """The pages' Jinja environment, built when the first page is rendered.

        Jinja is imported then, not at start-up: most processes never render a console page.
        """
        from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: PLC0415

        templates = Environment(
            loader=PackageLoader("omnistack_core.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        templates.filters["when"] = _when
        # Errors quote their input, personal data included.
        templates.filters["masked"] = mask_text
        return templates

    @classmethod
    def of(cls, app: Starlette) -> ConsoleState:
        """The running console of ``app``.

        Raises:
            ModuleNotRunningError: The app does not run the console module.
        """
        return resource_of(app, "console", ConsoleState)

    def installed(self, app: Starlette, module: str) -> bool:
        """Whether ``module`` is installed and the console shows its section."""
        return module in self.sections and Installation.of(app).installed(module)

    async def spend_nonce(self, nonce: str, *, until: float) -> bool:
        """Mark a link's nonce used; False when it already was.

        With Redis every instance shares the record; without it (development) this process
        keeps it, which is enough for a single instance.
        """
        if self.redis is not None:
            ttl = max(1, int(until - time.time()) + 1)
            claimed = await self.redis.set(f"omnistack:console:link:{nonce}", b"1", nx=True, ex=ttl)
            return bool(claimed)
        now = time.time()
        self._spent = {key: end for key, end in self._spent.items() if end > now}
        if nonce in self._spent:
            return False
        self._spent[nonce] = until
        return True

    def render(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page from the package's templates, with the layout's shared context."""
        app = request.app
        nav = [
            (f"/console{path}", label)
            for module, path, label in NAVIGATION
            if not module or self.installed(app, module)
        ]
        page = self.templates.get_template(template).render(
            request=request,
            service=self.service_name,
            environment=self.settings.environment,
            nav=nav,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)
