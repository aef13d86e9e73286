"""``AIModule``: plugs the AI client into ``create_app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import MetaData
from starlette.applications import Starlette

from omnistack_core.ai.client import AIClient
from omnistack_core.ai.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from omnistack_core.ai.providers.base import ChatProvider
from omnistack_core.ai.quota import Quota
from omnistack_core.ai.settings import PROVIDERS, AISettings
from omnistack_core.ai.usage import UsageHook, UsageRecorder, ai_metadata
from omnistack_core.installation import Installation, resource_of
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.module import Module
from omnistack_core.module_settings import Requirement, When
from omnistack_core.openapi import declare_problems

logger = logging.getLogger("omnistack.ai")


class AIModule(Module[AISettings]):
    """One chat interface over OpenAI and Anthropic: ``AIModule.of(app)``.

    ``AIModule.of(app)`` is the running :class:`~omnistack_core.ai.AIClient`. Install it with
    ``create_app(modules=[AIModule()])`` and take the client in routes with the ``AI``
    dependency. With ``REDIS_URL`` set, quotas are kept in Redis (shared by every
    instance); without it, in the process.

    Args:
        prices: Prices by ``provider:model``, over the built-in table and ``AI_PRICES``.
        on_usage: Hooks called with each call's :class:`~omnistack_core.ai.UsageRecord`
            (report it to Stripe's meters, say).
        providers: Providers by name, replacing the ones built from the settings.
    """

    name = "ai"
    settings_class = AISettings

    def __init__(
        self,
        *,
        prices: Mapping[str, ModelPrice] | None = None,
        on_usage: Sequence[UsageHook] = (),
        providers: Mapping[str, ChatProvider] | None = None,
    ) -> None:
        self.prices = dict(prices or {})
        self.on_usage = list(on_usage)
        self.providers = dict(providers or {})

    @classmethod
    def of(cls, app: Starlette) -> AIClient:
        """The running app's :class:`AIClient`.

        Raises:
            ModuleNotRunningError: The app does not run the AI module.
        """
        return resource_of(app, cls.name, AIClient)

    def metadata(self) -> Sequence[MetaData]:
        """The ``ai_usage`` table."""
        return [ai_metadata]

    def migrations(self) -> MigrationBranch:
        """The ``omnistack_ai`` branch: the revisions of the ``ai_usage`` table."""
        return MigrationBranch("omnistack_ai", "omnistack_core.ai:migrations")

    def requirements(self) -> Sequence[Requirement]:
        """A provider's key, once a model of that provider is named (unless given here)."""
        return [
            Requirement(
                f"{provider}_api_key",
                "ai",
                when=(
                    When("ai_default_model", prefix=f"{provider}:"),
                    When("ai_fallback_models", prefix=f"{provider}:"),
                ),
            )
            for provider in PROVIDERS
            if provider not in self.providers
        ]

    def summary(self, settings: AISettings) -> str:
        """The providers with a key, and the default model."""
        keys = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}
        usable = [name for name in PROVIDERS if keys[name] or name in self.providers]
        model = settings.ai_default_model or "no default model"
        return f"{', '.join(usable) or 'no provider key (chat answers 503)'}; {model}"

    def lifespan(self, app: FastAPI, settings: AISettings) -> AbstractAsyncContextManager[None]:
        """Build the client (providers come later, on first use); close them at shutdown."""
        return self._running(app, settings)

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: AISettings) -> AsyncIterator[None]:
        installation = Installation.of(app)
        quota = None
        if settings.ai_quota_tokens or settings.ai_quota_requests:
            quota = Quota(
                tokens=settings.ai_quota_tokens,
                calls=settings.ai_quota_requests,
                window_seconds=settings.ai_quota_window_seconds,
                redis=installation.redis,
            )
        database = installation.require_database() if settings.ai_record_usage else None
        client = AIClient(
            settings,
            prices=PriceTable({**DEFAULT_PRICES, **settings.ai_prices, **self.prices}),
            usage=UsageRecorder(database, self.on_usage),
            quota=quota,
            providers=self.providers,
        )
        installation.provide(self.name, client)
        if settings.openai_api_key is None and settings.anthropic_api_key is None:
            logger.warning(
                "Neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set: AI calls answer 503"
            )
        try:
            yield
        finally:
            await client.aclose()


def ai_client(app: Starlette) -> AIClient:
    """The running app's :class:`AIClient`: ``AIModule.of(app)``.

    Raises:
        ModuleNotRunningError: The app does not run the AI module.
    """
    return AIModule.of(app)


# Not configured (503), a provider failing (502, 503), a user's quota spent (429).
@declare_problems(429, 502, 503)
async def _client(request: Request) -> AIClient:  # async: no thread-pool handoff
    return AIModule.of(request.app)


AI = Annotated[AIClient, Depends(_client)]
"""The app's AI client: ``async def handler(ai: AI)``."""
