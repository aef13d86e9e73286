from __future__ import annotations

import subprocess
import sys
import textwrap

import omnistack_core.ai
from tests.ai.ai_clients import Providers


def isort_order(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_exists() -> None:
    exported = omnistack_core.ai.__all__

    assert exported == sorted(exported, key=isort_order)
    assert len(exported) == len(set(exported))
    assert all(hasattr(omnistack_core.ai, name) for name in exported)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_sdks_load_only_when_their_provider_is_first_used(providers: Providers) -> None:
    result = run(
        f"""
        import asyncio, sys
        from omnistack_core import create_app
        from omnistack_core.ai import AIModule, ChatRequest, Message
        from omnistack_core import Settings, settings_class_for
        from omnistack_core.settings import load_settings

        loaded = lambda: sorted(m for m in ("openai", "anthropic") if m in sys.modules)
        print(loaded())
        settings = load_settings(
            settings_class_for([AIModule()], base=Settings), env_file=None,
            openai_api_key="{providers.openai.api_key}", openai_base_url="{providers.openai.url}",
            anthropic_api_key="sk-ant-unused",
        )
        app = create_app(settings, modules=[AIModule()])

        async def main():
            async with app.router.lifespan_context(app):
                print(loaded())
                request = ChatRequest([Message.user("Hi")], model="openai:gpt-4o-mini")
                await AIModule.of(app).chat(request)
                print(loaded())

        asyncio.run(main())
        """
    )

    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert printed == ["[]", "[]", "['openai']"]


def test_without_the_extra_the_import_error_says_what_to_install() -> None:
    result = run("import sys\nsys.modules['anthropic'] = None\nimport omnistack_core.ai")

    assert result.returncode == 1
    assert "pip install 'omnistack-core[ai]'" in result.stderr
