"""AI settings: model strings, fallbacks, base URLs; configured models need their keys."""

from __future__ import annotations

import pytest

from omnistack_core import create_app
from omnistack_core.ai import AI, AIConfigurationError, AIModule, AISettings, ChatRequest, Message
from omnistack_core.errors import ConfigurationError
from omnistack_core.settings import load_settings
from omnistack_core.testing import app_client


def problems(**values: object) -> dict[str, str]:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(AISettings, env_file=None, **values)
    return {problem.variable: problem.message for problem in raised.value.problems}


def test_fallbacks_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_FALLBACK_MODELS", "anthropic:claude-haiku-4-5, openai:gpt-4o-mini")

    settings = load_settings(AISettings, env_file=None)

    assert settings.ai_fallback_models == ["anthropic:claude-haiku-4-5", "openai:gpt-4o-mini"]


def test_models_must_name_a_known_provider() -> None:
    found = problems(ai_default_model="gpt-4o", ai_fallback_models=["google:gemini"])

    assert set(found) == {"AI_DEFAULT_MODEL", "AI_FALLBACK_MODELS"}
    assert "provider:model" in found["AI_DEFAULT_MODEL"]


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://gateway.example.com/v1", True),
        ("http://vllm:8000/v1", True),
        ("http://127.0.0.1:9000/v1", True),
        ("http://gateway.example.com/v1", False),
        ("ftp://gateway/v1", False),
    ],
)
def test_base_urls_need_tls_beyond_the_private_network(url: str, accepted: bool) -> None:
    values = {
        "environment": "production",
        "secret_key": "s" * 40,
        "database_url": "postgresql://u@h/d",
        "openai_base_url": url,
    }
    if accepted:
        assert load_settings(AISettings, env_file=None, **values).openai_base_url == url
    else:
        assert set(problems(**values)) == {"OPENAI_BASE_URL"}


def test_a_configured_model_without_its_key_refuses_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AI_DEFAULT_MODEL", "openai:gpt-4o-mini")
    monkeypatch.setenv("AI_FALLBACK_MODELS", "anthropic:claude-haiku-4-5")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")

    with pytest.raises(ConfigurationError) as raised:
        create_app(modules=[AIModule()])

    assert [(p.variable, p.message) for p in raised.value.problems] == [
        (
            "ANTHROPIC_API_KEY",
            "required with the ai module when AI_FALLBACK_MODELS=anthropic:claude-haiku-4-5",
        )
    ]
    assert "sk-test-key" not in str(raised.value)


async def test_a_request_without_a_model_is_a_503_that_costs_no_quota(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AI_QUOTA_REQUESTS", "1")
    app = create_app(modules=[AIModule()])

    @app.post("/ask")
    async def ask(ai: AI) -> dict[str, str]:
        answer = await ai.chat(ChatRequest([Message.user("Hi")], user_id="ada"))
        return {"text": answer.text}

    with caplog.at_level("WARNING", logger="omnistack.ai"):
        async with app_client(app) as client:
            first = await client.post("/ask")
            second = await client.post("/ask")
            spent = await AIModule.of(app).quota.spent("ada")

    assert first.status_code == second.status_code == 503
    assert first.json()["detail"] == "AI is not configured: set AI_DEFAULT_MODEL."
    assert spent == (0, 0)
    assert any("OPENAI_API_KEY nor ANTHROPIC_API_KEY" in r.getMessage() for r in caplog.records)
    assert issubclass(AIConfigurationError, ValueError)
