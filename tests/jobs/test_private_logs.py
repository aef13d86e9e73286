"""The worker's log lines keep job arguments and email addresses out."""

from __future__ import annotations

import logging

from omnistack_core.jobs.private_logs import EmailMaskFilter, JobArgumentsFilter, mask_emails


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("arq.worker", logging.INFO, __file__, 1, message, args, None)


def test_email_addresses_keep_their_first_letter_and_domain() -> None:
    text = "to='ada.lovelace@example.com', cc=['b@mail.example.co.uk'] <c@x.io>"

    assert mask_emails(text) == "to='a***@example.com', cc=['b***@mail.example.co.uk'] <c***@x.io>"


def test_text_without_an_address_is_left_alone() -> None:
    assert mask_emails("retry in 2.0 s @ 12:00") == "retry in 2.0 s @ 12:00"


def test_arqs_start_line_shows_no_arguments() -> None:
    started = record("%6.2fs → %s(%s)%s", 0.01, "4f2a:email.send", "'ada@example.com'", " try=2")

    assert JobArgumentsFilter().filter(started)
    assert started.getMessage() == "  0.01s → 4f2a:email.send(…) try=2"


def test_an_address_in_a_failure_is_masked() -> None:
    failed = record(
        "%6.2fs ! %s failed, %s: %s",
        0.5,
        "4f2a:email.send",
        "ValueError",
        ValueError("bounced: ada@example.com"),
    )

    assert EmailMaskFilter().filter(failed)
    assert failed.getMessage() == (
        "  0.50s ! 4f2a:email.send failed, ValueError: bounced: a***@example.com"
    )


def test_an_address_in_an_extra_field_is_masked() -> None:
    suppressed = record("Suppressed an address")
    suppressed.address = "grace@example.org"
    suppressed.reason = "bounce"

    assert EmailMaskFilter().filter(suppressed)
    assert (suppressed.address, suppressed.reason) == ("g***@example.org", "bounce")
