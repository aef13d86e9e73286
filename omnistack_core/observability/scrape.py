"""Work done just before each metrics scrape: values read from elsewhere (a queue's depth)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette

ScrapeHook = Callable[[Starlette], Awaitable[None]]


def add_scrape_hook(app: Starlette, hook: ScrapeHook) -> None:
    """Run ``hook(app)`` before each exposition of ``app``'s metrics endpoint.

    A hook sets gauges from state the process does not track itself; a hook that fails is
    logged and skipped, so one broken source never hides the other metrics.
    """
    hooks: list[ScrapeHook] = scrape_hooks(app)
    hooks.append(hook)


def scrape_hooks(app: Starlette) -> list[ScrapeHook]:
    """The hooks registered on ``app`` (created empty on first use)."""
    if not hasattr(app.state, "scrape_hooks"):
        app.state.scrape_hooks = []
    hooks: list[ScrapeHook] = app.state.scrape_hooks
    return hooks
