"""The settings the example's README gives configure a service that starts."""

from __future__ import annotations

import re
from pathlib import Path

from examples.saas.main import create_service
from examples.saas.settings import SaasSettings
from omnistack_core import load_settings
from omnistack_core.testing import app_client

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_block() -> str:
    match = re.search(r"<!-- settings -->\n```bash\n(.+?)\n```", README.read_text(), re.DOTALL)
    assert match is not None, "the README has no settings block"
    return match.group(1)


async def test_the_readme_settings_with_their_placeholders_filled_in_start_the_service(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(settings_block().replace("...", "0123456789abcdef"))

    settings = load_settings(SaasSettings, env_file=env_file)
    async with app_client(create_service(settings)) as client:
        ready = await client.get("/api/v1/public/health/ready")

    assert settings.environment == "development"
    assert {
        name: (plan.price, plan.trial_days) for name, plan in settings.billing_plans.items()
    } == {"pro": ("price_0123456789abcdef", 14)}
    assert settings.stripe_secret_key is not None
    assert settings.stripe_webhook_secret is not None
    assert settings.usage_meter_event == "ai_tokens"
    assert settings.ai_default_model == "openai:gpt-4o-mini"
    assert (settings.ai_quota_tokens, settings.ai_quota_requests) == (200_000, 200)
    assert settings.email_provider == "console"
    assert settings.email_from == "Summarizer <hello@example.com>"
    assert settings.redis_url is None
    assert ready.status_code == 200
