"""AI: one chat interface over OpenAI and Anthropic.

Models are named ``"openai:gpt-4o-mini"`` or ``"anthropic:claude-haiku-4-5"``; the request,
the response, the stream events and the tools are the same whatever the provider. The client
retries and falls back on provider failures, meters usage (metrics, logs, the ``ai_usage``
table, hooks), enforces per-user quotas, and ``sse_response`` streams answers to browsers.

Needs the ``ai`` extra: ``pip install 'omnistack-core[ai]'``. The ``openai`` and
``anthropic`` SDKs are imported when their provider is first used, not on import.
"""

import importlib.util

from omnistack_core.errors import MissingDependencyError

# Checked, not imported: the SDKs load on first use, not on import.
if not all(importlib.util.find_spec(name) for name in ("openai", "anthropic")):
    raise MissingDependencyError("ai", "ai")

from omnistack_core.ai.client import AIClient
from omnistack_core.ai.errors import (
    AIConfigurationError,
    AIError,
    AIProviderError,
    AIRateLimitError,
    AIRequestError,
    AIStreamError,
    AITimeoutError,
    QuotaExceededError,
    StructuredOutputError,
)
from omnistack_core.ai.module import AI, AIModule, ai_client
from omnistack_core.ai.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from omnistack_core.ai.providers.base import ChatProvider
from omnistack_core.ai.quota import Quota
from omnistack_core.ai.settings import AISettings
from omnistack_core.ai.sse import STREAM_RESPONSES, response_body, sse_response
from omnistack_core.ai.tools import call_tools, tool
from omnistack_core.ai.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    ProviderRequest,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from omnistack_core.ai.usage import UsageHook, UsageRecord, UsageRecorder, ai_metadata, ai_usage
from omnistack_core.ai.usage_report import UsageTotal, usage_totals

__all__ = [
    "AI",
    "DEFAULT_PRICES",
    "STREAM_RESPONSES",
    "AIClient",
    "AIConfigurationError",
    "AIError",
    "AIModule",
    "AIProviderError",
    "AIRateLimitError",
    "AIRequestError",
    "AISettings",
    "AIStreamError",
    "AITimeoutError",
    "ChatProvider",
    "ChatRequest",
    "ChatResponse",
    "FinishReason",
    "ImagePart",
    "Message",
    "ModelPrice",
    "PriceTable",
    "ProviderRequest",
    "Quota",
    "QuotaExceededError",
    "StreamEvent",
    "StructuredOutputError",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "UsageHook",
    "UsageRecord",
    "UsageRecorder",
    "UsageTotal",
    "ai_client",
    "ai_metadata",
    "ai_usage",
    "call_tools",
    "response_body",
    "sse_response",
    "tool",
    "usage_totals",
]
