"""Cursors in ``after=``: what a page writes comes back; what a hand edits starts over."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omnistack_core.console.pagination import decode_cursor, encode_cursor, moment, page_url


def test_a_cursor_comes_back_converted() -> None:
    when = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)
    text = encode_cursor(when.isoformat(), "evt_1")
    assert decode_cursor(text, moment, str) == (when, "evt_1")
    assert decode_cursor(encode_cursor(1.5, "job"), float, str) == (1.5, "job")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64 at all!",
        encode_cursor("only one part"),
        encode_cursor("not a time", "evt_1"),
        encode_cursor(["nested"], "evt_1"),
        "eyJhIjogMX0",  # {"a": 1}: JSON, but no list
    ],
)
def test_a_malformed_cursor_is_no_cursor(text: str) -> None:
    assert decode_cursor(text, moment, str) is None


def test_page_urls_leave_empty_filters_out() -> None:
    assert page_url("/console/billing", {"type": "", "outcome": "failed"}) == (
        "/console/billing?outcome=failed"
    )
    assert page_url("/console/email", {}, "abc") == "/console/email?after=abc"
