"""``AIModule``: plugs the AI client into ``create_app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request
from sqlalchemy import MetaData

from omnistack_core.ai.client import AIClient
from omnistack_core.ai.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from omnistack_core.ai.providers.base import ChatProvider
from omnistack_core.ai.quota import Quota
from omnistack_core.ai.settings import AISettings
from omnistack_core.ai.usage import UsageHook, UsageRecorder, ai_metadata
from omnistack_core.errors import ConfigProblem, ConfigurationError
from omnistack_core.module import Module
from omnistack_core.settings import Settings

logger = logging.getLogger("omnistack.ai")


class AIModule(Module):
    """One chat interface over OpenAI and Anthropic, as ``app.state.ai``.

    ``app.state.ai`` is the :class:`~omnistack_core.ai.AIClient`. Install it with
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

    def metadata(self) -> Sequence[MetaData]:
        """The ``ai_usage`` table."""
        return [ai_metadata]

    def lifespan(self, app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[None]:
        """Build the client (providers come later, on first use); close them at shutdown."""
        return self._running(app, cast("AISettings", settings))

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: AISettings) -> AsyncIterator[None]:
        self._check_models(settings)
        quota = None
        if settings.ai_quota_tokens or settings.ai_quota_requests:
            quota = Quota(
                tokens=settings.ai_quota_tokens,
                calls=settings.ai_quota_requests,
                window_seconds=settings.ai_quota_window_seconds,
                redis=getattr(app.state, "redis", None),
            )
        client = AIClient(
            settings,
            prices=PriceTable({**DEFAULT_PRICES, **settings.ai_prices, **self.prices}),
            usage=UsageRecorder(
                app.state.database if settings.ai_record_usage else None, self.on_usage
            ),
            quota=quota,
            providers=self.providers,
        )
        app.state.ai = client
        if settings.openai_api_key is None and settings.anthropic_api_key is None:
            logger.warning(
                "Neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set: AI calls answer 503"
            )
        try:
            yield
        finally:
            await client.aclose()

    def _check_models(self, settings: AISettings) -> None:
        models = [settings.ai_default_model or "", *settings.ai_fallback_models]
        keys = {
            "openai": ("OPENAI_API_KEY", settings.openai_api_key),
            "anthropic": ("ANTHROPIC_API_KEY", settings.anthropic_api_key),
        }
        problems = []
        for model in filter(None, models):
            provider = model.partition(":")[0]
            variable, key = keys[provider]
            if key is None and provider not in self.providers:
                problems.append(ConfigProblem(variable, f"required to call {model}"))
        if problems:
            raise ConfigurationError(problems)


def ai_client(app: FastAPI) -> AIClient:
    """The running app's :class:`AIClient` (``app.state.ai``).

    Raises:
        RuntimeError: The app has no ``AIModule``, or has not started.
    """
    client: AIClient | None = getattr(app.state, "ai", None)
    if client is None:
        raise RuntimeError("the AI module is not running: add AIModule() to create_app")
    return client


def _client(request: Request) -> AIClient:
    return ai_client(request.app)


AI = Annotated[AIClient, Depends(_client)]
"""The app's AI client: ``async def handler(ai: AI)``."""
