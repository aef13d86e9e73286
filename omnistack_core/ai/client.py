"""``AIClient``: chat, streaming and structured output with retries, fallbacks and metering.

Quotas are reserved before each call and usage recorded after it.

Each model in a request's chain (its model, then its fallbacks) gets up to
``AI_MAX_RETRIES`` retries of a rate limit, overload, server error, timeout or connection
failure, waiting the provider's ``Retry-After`` or an exponential backoff with jitter; then
the next model is tried. A refusal of the request itself (400, 401, 404…) is raised at once:
another model would refuse it too, or worse, accept what the first rightly refused. A stream
that fails before its first event is retried and falls back the same way; one that fails
after is reported to the caller as :class:`~omnistack_core.ai.AIStreamError` and never
retried, since the caller already has part of the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from omnistack_core.ai.errors import (
    AIConfigurationError,
    AIProviderError,
    AIRateLimitError,
    AIStreamError,
    AITimeoutError,
    StructuredOutputError,
)
from omnistack_core.ai.pricing import PriceTable
from omnistack_core.ai.providers.base import ChatProvider
from omnistack_core.ai.quota import Quota, Reservation, estimate_tokens
from omnistack_core.ai.settings import AISettings
from omnistack_core.ai.types import (
    ChatRequest,
    ChatResponse,
    Message,
    ProviderRequest,
    StreamEvent,
)
from omnistack_core.ai.usage import UsageRecord, UsageRecorder, count_failure

logger = logging.getLogger("omnistack.ai")

OutputT = TypeVar("OutputT", bound=BaseModel)

_BACKOFF_SECONDS = 0.5


class AIClient:
    """One chat interface over OpenAI and Anthropic; ``AIModule.of(app)`` while the app runs.

    Attributes:
        settings: The AI settings it was built with (models, limits), for routes that
            need them, e.g. to list the models they offer.

    Args:
        settings: The AI settings (keys, base URLs, defaults).
        prices: The price table for cost estimates.
        usage: Where each call's usage goes.
        quota: Per-user budgets; None for none.
        providers: Providers by name, replacing those built from the settings (tests, or a
            provider of the app's own).
    """

    def __init__(
        self,
        settings: AISettings,
        *,
        prices: PriceTable | None = None,
        usage: UsageRecorder | None = None,
        quota: Quota | None = None,
        providers: Mapping[str, ChatProvider] | None = None,
    ) -> None:
        self.settings = settings
        self.prices = prices or PriceTable()
        self.usage = usage or UsageRecorder(None)
        self.quota = quota
        self._providers: dict[str, ChatProvider] = dict(providers or {})
        self._given = frozenset(self._providers)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """The model's answer.

        Raises:
            AIConfigurationError: A model names an unknown provider, or one without a key.
            AIRequestError: The provider refused the request.
            AIProviderError: Every model of the chain failed (the last failure).
            QuotaExceededError: The user's budget for the period is spent.
        """
        return await self._metered_chat(request, None)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """The answer as it is written, then the whole of it.

        :class:`TextDelta` and :class:`ToolCallDelta` events come first, then one
        :class:`ChatResponse` with the text, the tool calls and the usage. Stop iterating,
        or cancel the task, and the provider's connection is closed: no tokens are paid for
        that nobody reads.

        Raises:
            AIStreamError: The stream failed after delivering part of the answer.
        """
        chain = self._chain(request)  # a configuration error costs the user nothing
        reservation = await self._reserve(request)
        used: int | None = None
        delivered = False
        try:
            failure: AIProviderError | None = None
            for model in chain:
                provider, call = self._call(request, model, None)
                for attempt in range(self.settings.ai_max_retries + 1):
                    started = time.perf_counter()
                    try:
                        async with aclosing(provider.stream(call)) as events:
                            async for event in events:
                                if type(event) is ChatResponse:
                                    event = await self._finish(  # noqa: PLW2901
                                        request, provider, call, event, started, streamed=True
                                    )
                                    used = event.usage.total_tokens
                                delivered = True
                                yield event
                    except AIProviderError as exc:
                        if delivered:
                            count_failure(provider.name, call.model, _status(exc))
                            raise AIStreamError(f"the stream broke: {exc}") from exc
                        failure = exc
                        if not await self._may_retry(provider.name, call.model, exc, attempt):
                            break
                    else:
                        return
                if failure is not None and not failure.retryable:
                    raise failure
            if failure is None:  # pragma: no cover - a chain has at least one model
                raise AIConfigurationError("no model to call", ("AI_DEFAULT_MODEL",))
            raise failure
        finally:
            # A stream cut short keeps its reservation: its tokens are partly spent, and
            # an over-count is safer than an under-count.
            if used is not None or not delivered:
                await self._settle(reservation, used or 0, failed=used is None)

    async def structured(self, request: ChatRequest, output: type[OutputT]) -> OutputT:
        """The answer as a validated ``output`` instance.

        The provider is asked for JSON of the model's schema (OpenAI's ``json_schema``
        response format, a forced tool call on Anthropic). An answer that does not validate
        is shown back to the model with the errors, once.

        Raises:
            StructuredOutputError: The second answer did not validate either.
        """
        schema = (output.__name__, output.model_json_schema())
        response = await self._metered_chat(request, schema)
        try:
            return output.model_validate_json(response.text)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'answer'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            logger.info("Structured answer did not validate (%s); asking again", problems)
        repair = dataclasses.replace(
            request,
            messages=[
                *request.messages,
                Message.assistant(response.text),
                Message.user(
                    f"That answer does not match the {output.__name__} schema ({problems}). "
                    "Answer again with only a JSON object that matches it."
                ),
            ],
        )
        response = await self._metered_chat(repair, schema)
        try:
            return output.model_validate_json(response.text)
        except ValidationError as exc:
            raise StructuredOutputError(
                f"the answer did not match {output.__name__} after a repair attempt",
                response.text,
            ) from exc

    def provider(self, name: str) -> ChatProvider:
        """The provider called ``name``, built on first use (its SDK is imported then).

        Raises:
            AIConfigurationError: Unknown, or its API key is not set.
        """
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        if name == "openai":
            if self.settings.openai_api_key is None:
                raise _not_configured("openai models need OPENAI_API_KEY", "OPENAI_API_KEY")
            from omnistack_core.ai.providers.openai import OpenAIProvider  # noqa: PLC0415

            provider = OpenAIProvider(
                self.settings.openai_api_key, base_url=self.settings.openai_base_url
            )
        elif name == "anthropic":
            if self.settings.anthropic_api_key is None:
                raise _not_configured(
                    "anthropic models need ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"
                )
            from omnistack_core.ai.providers.anthropic import AnthropicProvider  # noqa: PLC0415

            provider = AnthropicProvider(
                self.settings.anthropic_api_key, base_url=self.settings.anthropic_base_url
            )
        else:
            raise _not_configured(
                f"unknown provider {name!r}: openai or anthropic", *_MODEL_VARIABLES
            )
        self._providers[name] = provider
        return provider

    async def aclose(self) -> None:
        """Close the providers it built."""
        for name, provider in self._providers.items():
            if name not in self._given:
                await provider.aclose()

    async def _metered_chat(
        self, request: ChatRequest, schema: tuple[str, Mapping[str, object]] | None
    ) -> ChatResponse:
        self._chain(request)  # a configuration error costs the user nothing
        reservation = await self._reserve(request)
        try:
            response = await self._chat_chain(request, schema)
        except BaseException:
            await self._settle(reservation, 0, failed=True)
            raise
        await self._settle(reservation, response.usage.total_tokens)
        return response

    async def _chat_chain(
        self, request: ChatRequest, schema: tuple[str, Mapping[str, object]] | None
    ) -> ChatResponse:
        failure: AIProviderError | None = None
        for model in self._chain(request):
            provider, call = self._call(request, model, schema)
            for attempt in range(self.settings.ai_max_retries + 1):
                started = time.perf_counter()
                try:
                    response = await provider.chat(call)
                except AIProviderError as exc:
                    failure = exc
                    if not await self._may_retry(provider.name, call.model, exc, attempt):
                        break
                    continue
                return await self._finish(request, provider, call, response, started)
            if failure is not None and not failure.retryable:
                raise failure
        if failure is None:  # pragma: no cover - a chain has at least one model
            raise AIConfigurationError("no model to call", ("AI_DEFAULT_MODEL",))
        raise failure

    async def _may_retry(
        self, provider: str, model: str, exc: AIProviderError, attempt: int
    ) -> bool:
        """Count the failure; wait and return True when this model deserves another try."""
        count_failure(provider, model, _status(exc))
        if not exc.retryable or attempt >= self.settings.ai_max_retries:
            logger.warning("AI call to %s:%s failed: %s", provider, model, exc)
            return False
        wait = exc.retry_after
        if wait is None:
            wait = _BACKOFF_SECONDS * 2**attempt * random.uniform(0.5, 1.0)  # noqa: S311
        if wait > self.settings.ai_max_retry_wait:
            logger.warning("AI call to %s:%s asks to wait %.0f s: moving on", provider, model, wait)
            return False
        logger.info("AI call to %s:%s failed (%s); retrying in %.2f s", provider, model, exc, wait)
        await asyncio.sleep(wait)
        return True

    async def _finish(
        self,
        request: ChatRequest,
        provider: ChatProvider,
        call: ProviderRequest,
        response: ChatResponse,
        started: float,
        *,
        streamed: bool = False,
    ) -> ChatResponse:
        latency_ms = (time.perf_counter() - started) * 1000
        cost = self.prices.cost(provider.name, response.usage, call.model, response.model)
        await self.usage.record(
            UsageRecord(
                provider=provider.name,
                model=call.model,
                usage=response.usage,
                cost=cost,
                user_id=request.user_id,
                latency_ms=latency_ms,
                streamed=streamed,
            )
        )
        return dataclasses.replace(response, latency_ms=latency_ms, cost=cost)

    def _chain(self, request: ChatRequest) -> list[str]:
        first = request.model or self.settings.ai_default_model
        if not first:
            raise _not_configured(
                "the request names no model and AI_DEFAULT_MODEL is unset", "AI_DEFAULT_MODEL"
            )
        fallbacks = (
            request.fallbacks if request.fallbacks is not None else self.settings.ai_fallback_models
        )
        return list(dict.fromkeys([first, *fallbacks]))

    def _call(
        self,
        request: ChatRequest,
        model: str,
        schema: tuple[str, Mapping[str, object]] | None,
    ) -> tuple[ChatProvider, ProviderRequest]:
        provider_name, _, name = model.partition(":")
        if not name:
            raise _not_configured(f"{model!r} is not provider:model", *_MODEL_VARIABLES)
        return self.provider(provider_name), ProviderRequest(
            model=name,
            messages=request.messages,
            max_tokens=request.max_tokens or self.settings.ai_default_max_tokens,
            timeout=request.timeout or self.settings.ai_timeout,
            temperature=request.temperature,
            stop=request.stop,
            tools=request.tools,
            tool_choice=request.tool_choice,
            response_schema=schema,
        )

    async def _reserve(self, request: ChatRequest) -> Reservation | None:
        if self.quota is None or request.user_id is None:
            return None
        max_tokens = request.max_tokens or self.settings.ai_default_max_tokens
        return await self.quota.reserve(
            request.user_id, estimate_tokens(request.messages, max_tokens)
        )

    async def _settle(
        self, reservation: Reservation | None, used: int, *, failed: bool = False
    ) -> None:
        if reservation is not None and self.quota is not None:
            await self.quota.settle(reservation, used, failed=failed)


# Where models are named, as provider:model.
_MODEL_VARIABLES = ("AI_DEFAULT_MODEL", "AI_FALLBACK_MODELS")


def _not_configured(message: str, *variables: str) -> AIConfigurationError:
    # Clients get a 503 naming what to set; the log says what exactly is wrong.
    logger.warning("AI is not configured: %s", message)
    return AIConfigurationError(message, variables)


def _status(exc: AIProviderError) -> str:
    if isinstance(exc, AIRateLimitError):
        return "rate_limited"
    if isinstance(exc, AITimeoutError):
        return "timeout"
    return "error"
