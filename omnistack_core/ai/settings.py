"""The AI module's settings: the providers' keys, the models, retries, quotas and prices.

A provider is usable when its key is set; a model named in ``AI_DEFAULT_MODEL`` or
``AI_FALLBACK_MODELS`` needs its provider's key (the module declares that requirement).
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from omnistack_core.ai.pricing import ModelPrice
from omnistack_core.module_settings import LOCAL, ModuleSettings
from omnistack_core.rate_limit import RateText

PROVIDERS = ("openai", "anthropic")


class AISettings(ModuleSettings):
    """Settings of :class:`~omnistack_core.ai.AIModule`.

    Validator names start with ``_ai_``: a service composes every module's settings class
    into one, where validators must not share names. The models come before the keys: the
    keys' requirements read them.
    """

    module = "ai"

    openai_base_url: str | None = None
    """OpenAI's API base URL (``…/v1``): an OpenAI-compatible gateway, a proxy, a local
    server in tests; OpenAI's own when unset."""
    anthropic_base_url: str | None = None
    """Anthropic's API base URL: a proxy or a local server; Anthropic's own when unset."""
    ai_default_model: str | None = None
    """The model requests get when they name none, ``openai:gpt-4o-mini`` style."""
    ai_fallback_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Models tried in order when a request's model is rate-limited, overloaded, failing or
    too slow (JSON list or comma-separated)."""
    openai_api_key: SecretStr | None = None
    """OpenAI API key (``sk-…``); required when a model named here is an ``openai:`` one."""
    anthropic_api_key: SecretStr | None = None
    """Anthropic API key (``sk-ant-…``); required when a model named here is an
    ``anthropic:`` one."""
    ai_timeout: float = Field(default=60.0, gt=0, le=600)
    """Seconds one attempt may take, unless the request says otherwise."""
    ai_max_retries: int = Field(default=2, ge=0, le=10)
    """Retries of one model on a 429, 5xx, overload, timeout or connection error."""
    ai_max_retry_wait: float = Field(default=20.0, ge=0, le=300)
    """The longest wait before a retry; a longer ``Retry-After`` moves to the fallback."""
    ai_default_max_tokens: int = Field(default=1024, ge=1, le=200_000)
    """``max_tokens`` of requests that set none (Anthropic requires one; it bounds cost)."""
    ai_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Prices per million tokens by ``provider:model``, added to (and overriding) the built-in
    table: ``{"openai:my-model": {"input": 1.0, "output": 2.0, "cached_input": 0.5}}``."""
    ai_record_usage: bool = False
    """Write every call's usage to the ``ai_usage`` table (by user, for billing)."""
    ai_quota_tokens: int | None = Field(default=None, ge=1)
    """Tokens a user may spend per ``AI_QUOTA_WINDOW_SECONDS``; unlimited when unset."""
    ai_quota_requests: int | None = Field(default=None, ge=1)
    """Calls a user may make per ``AI_QUOTA_WINDOW_SECONDS``; unlimited when unset."""
    ai_quota_window_seconds: int = Field(default=86_400, ge=1, le=31 * 86_400)
    """The quota period: fixed windows of this many seconds (a day by default)."""
    ai_rate_limit: RateText = "60/minute"
    """Calls a user may make through routes guarded by ``RateLimit(setting="ai_rate_limit")``
    (the generated chat route), in any sliding window: ``60/minute``."""

    @field_validator("ai_fallback_models", mode="before")
    @classmethod
    def _ai_split_models(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ai_default_model")
    @classmethod
    def _ai_default_model(cls, value: str | None) -> str | None:
        if value is not None:
            _check_model(value)
        return value

    @field_validator("ai_fallback_models")
    @classmethod
    def _ai_fallbacks(cls, value: list[str]) -> list[str]:
        for model in value:
            _check_model(model)
        return value

    @field_validator("openai_base_url", "anthropic_base_url")
    @classmethod
    def _ai_base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        parsed = urlsplit(value)
        if parsed.scheme == "https" and parsed.hostname:
            return value
        local = info.data.get("environment") in LOCAL
        # A model server beside the service (vLLM at http://vllm:8000/v1) is reached over
        # the private network by its one-label name; anything else needs TLS.
        private = parsed.hostname is not None and (
            parsed.hostname in ("localhost", "127.0.0.1", "::1") or "." not in parsed.hostname
        )
        if parsed.scheme == "http" and parsed.hostname and (local or private):
            return value
        raise ValueError(
            "must be an https:// URL (http:// only in development and test, or to localhost "
            "or a one-label private host name)"
        )


def _check_model(model: str) -> None:
    provider, _, name = model.partition(":")
    if provider not in PROVIDERS or not name:
        raise ValueError(f"{model!r} is not provider:model (providers: openai, anthropic)")
