from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from omnistack_core.testing.resend_server import LocalResend

_EMAIL_EXTRA = all(
    importlib.util.find_spec(name) for name in ("resend", "jinja2", "aiosmtplib", "email_validator")
)
_JOBS_EXTRA = all(importlib.util.find_spec(name) for name in ("arq", "redis"))

# The nox session without extras cannot import these.
collect_ignore_glob = [
    *([] if _EMAIL_EXTRA else ["test_*.py"]),
    *([] if _EMAIL_EXTRA and _JOBS_EXTRA else ["test_jobs.py"]),
    *([] if importlib.util.find_spec("aiosmtpd") else ["test_smtp_provider.py"]),
]


@pytest.fixture(autouse=True)
def no_email_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The email module's own variables are unset too, whatever the shell exports."""
    from omnistack_core.email import EmailSettings  # noqa: PLC0415 - with the email extra

    for name in EmailSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def resend_server() -> Iterator[LocalResend]:
    """Resend's API on 127.0.0.1."""
    with LocalResend() as server:
        yield server
