"""Test helpers for OmniStack services: an in-process client, real databases, local fakes.

``LocalResend`` speaks Resend's API on 127.0.0.1, ``LocalStripe`` Stripe's billing API,
``LocalOpenAI`` OpenAI's Chat Completions API and ``LocalAnthropic`` Anthropic's Messages API
(their answers scripted with ``reply()``/``fail()``, tool calls as ``ToolCallScript``, the
requests they received recorded as ``AIRequest``); ``omnistack_core.testing.issuer`` holds the
local token issuer (it needs the ``auth`` extra). ``wait_until`` and ``wait_until_async`` wait
for a condition with a deadline, where a test would otherwise sleep a fixed time.

For pytest fixtures, add ``pytest_plugins = ["omnistack_core.testing.pytest_plugin"]`` to the
top-level ``conftest.py``. Only tests import this package.
"""

from omnistack_core.testing.ai_server import AIRequest, ToolCallScript
from omnistack_core.testing.anthropic_server import LocalAnthropic
from omnistack_core.testing.client import app_client
from omnistack_core.testing.openai_server import LocalOpenAI
from omnistack_core.testing.resend_server import LocalResend, sign_webhook
from omnistack_core.testing.services import (
    DEFAULT_TEST_POSTGRES_URL,
    DEFAULT_TEST_REDIS_URL,
    ServiceUnavailableError,
    create_test_database,
    drop_test_database,
    flush_redis,
)
from omnistack_core.testing.stripe_server import LocalStripe, sign_stripe_webhook
from omnistack_core.testing.waiting import wait_until, wait_until_async

__all__ = [
    "DEFAULT_TEST_POSTGRES_URL",
    "DEFAULT_TEST_REDIS_URL",
    "AIRequest",
    "LocalAnthropic",
    "LocalOpenAI",
    "LocalResend",
    "LocalStripe",
    "ServiceUnavailableError",
    "ToolCallScript",
    "app_client",
    "create_test_database",
    "drop_test_database",
    "flush_redis",
    "sign_stripe_webhook",
    "sign_webhook",
    "wait_until",
    "wait_until_async",
]
