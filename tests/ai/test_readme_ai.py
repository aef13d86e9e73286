"""The README's AI example runs as written."""

from __future__ import annotations

import json

import pytest

from omnistack_core.testing import app_client
from tests.ai.ai_clients import Providers
from tests.test_readme import python_blocks


async def test_the_ai_example_answers_streams_and_classifies(
    providers: Providers, monkeypatch: pytest.MonkeyPatch
) -> None:
    [example] = [block for block in python_blocks() if "AIModule()" in block]
    monkeypatch.setenv("OPENAI_API_KEY", providers.openai.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", providers.openai.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", providers.anthropic.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", providers.anthropic.url)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    app = namespace["app"]
    providers.openai.fail(500, times=3)  # the first model fails, retries too: the fallback
    providers.anthropic.reply("Paris.")
    providers.openai.reply("Lyon.", chunk_size=2)
    providers.openai.reply(json.dumps({"spam": True, "reason": "a prize nobody entered"}))

    async with app_client(app) as client:
        answered = await client.post("/api/v1/ask", params={"question": "Capital?"})
        streamed = await client.post("/api/v1/ask", params={"question": "2nd?", "stream": True})
        verdict = await client.post("/api/v1/classify", params={"text": "You won!"})

    assert answered.json()["text"] == "Paris."
    assert answered.json()["provider"] == "anthropic"
    assert streamed.text.startswith("event: delta")
    assert '"text":"Lyon."' in streamed.text
    assert verdict.json() == {"spam": True, "reason": "a prize nobody entered"}
