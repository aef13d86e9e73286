from __future__ import annotations

import pytest

from omnistack_core.redaction import redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://app:pw@db:5432/app?ssl=require",
            "postgresql+asyncpg://app:***@db:5432/app?ssl=require",
        ),
        ("redis://:p%40ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite+aiosqlite:///./dev.db", "sqlite+aiosqlite:///./dev.db"),
        ("postgres://u:pw@host:port/db", "***"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_hides_url_passwords_anywhere_in_a_message() -> None:
    text = "connect to postgres://app:s3cr3t@db/app failed; retry redis://:tok3n@cache:6379"

    assert redact_text(text) == (
        "connect to postgres://app:***@db/app failed; retry redis://:***@cache:6379"
    )


def test_redact_text_hides_given_secrets_longest_first() -> None:
    text = "key sk_live_abcdef and its prefix sk_live used"

    assert redact_text(text, ["sk_live", "sk_live_abcdef"]) == "key *** and its prefix *** used"


def test_redact_text_leaves_tiny_secrets_alone_rather_than_mangling_words() -> None:
    assert redact_text("a bad day", ["a"]) == "a bad day"
