"""Clients and apps pointed at the local OpenAI and Anthropic servers, shared by the AI tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from omnistack_core.ai import AIClient, AISettings
from omnistack_core.settings import load_settings
from omnistack_core.testing.ai_server import LocalAIServer
from omnistack_core.testing.anthropic_server import LocalAnthropic
from omnistack_core.testing.openai_server import LocalOpenAI

MODELS = {"openai": "openai:gpt-4o-mini", "anthropic": "anthropic:claude-haiku-4-5"}


@dataclass
class Providers:
    """Both local servers, and settings pointing at them."""

    openai: LocalOpenAI
    anthropic: LocalAnthropic

    def server(self, provider: str) -> LocalAIServer:
        return self.openai if provider == "openai" else self.anthropic

    def settings(self, **values: Any) -> AISettings:
        return load_settings(
            AISettings,
            env_file=None,
            environment="development",
            openai_api_key=self.openai.api_key,
            openai_base_url=self.openai.url,
            anthropic_api_key=self.anthropic.api_key,
            anthropic_base_url=self.anthropic.url,
            **values,
        )

    def client(self, **values: Any) -> AIClient:
        values.setdefault("ai_max_retries", 0)
        return AIClient(self.settings(**values))


@contextmanager
def local_providers() -> Iterator[Providers]:
    with LocalOpenAI() as openai, LocalAnthropic() as anthropic:
        yield Providers(openai, anthropic)
