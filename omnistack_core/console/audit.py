"""The console's audit log: every action, with its operator, target and outcome, PII masked."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("omnistack.console")

MASK = "***"

_EMAIL = re.compile(r"(?P<first>[^\s@<>\"',;:]{1})[^\s@<>\"',;:]*@(?P<domain>[\w.-]+\.\w+)")
# Argument names whose values are personal or secret whatever they look like.
_SENSITIVE_NAMES = re.compile(
    r"mail|name|phone|address|token|secret|password|passwd|card|iban|ssn|birth|ip",
    re.IGNORECASE,
)


def mask_text(text: str) -> str:
    """``text`` with each email address cut to its first letter and domain: ``a***@x.com``."""
    return _EMAIL.sub(lambda match: f"{match['first']}{MASK}@{match['domain']}", text)


def mask_value(value: Any, name: str = "") -> Any:
    """JSON data with personal values masked, for a page or a log line.

    Values under a key that names personal or secret data (``email``, ``phone``, ``token``)
    become ``***``; email addresses anywhere else are cut to their first letter and domain.
    """
    if name and _SENSITIVE_NAMES.search(name) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {key: mask_value(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    return value


def record(operator: str, action: str, target: str, outcome: str) -> None:
    """Log one console action: who did what to which target, and how it went."""
    logger.info(
        "console %s %s by %s: %s",
        action,
        mask_text(target),
        mask_text(operator),
        outcome,
        extra={
            "console_operator": mask_text(operator),
            "console_action": action,
            "console_target": mask_text(target),
            "console_outcome": outcome,
        },
    )
