from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ai.ai_clients import Providers, local_providers


@pytest.fixture(autouse=True)
def no_ai_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AI module's own variables are unset too, whatever the shell exports."""
    from omnistack_core.ai import AISettings  # noqa: PLC0415 - with the ai extra

    for name in AISettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def providers() -> Iterator[Providers]:
    """The local OpenAI and Anthropic servers."""
    with local_providers() as both:
        yield both


@pytest.fixture(params=["openai", "anthropic"])
def provider(request: pytest.FixtureRequest) -> str:
    """Each provider in turn: the same test runs against both."""
    return str(request.param)
