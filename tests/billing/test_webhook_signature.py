"""Stripe signatures: checked with the SDK on the raw body, both ways in time, several secrets."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from omnistack_core.billing import WebhookSignatureError, parse_event, verify_signature
from omnistack_core.testing.stripe_server import sign_stripe_webhook

SECRET = "whsec_test_secret_for_signatures"
BODY = json.dumps(
    {
        "id": "evt_1",
        "object": "event",
        "type": "invoice.paid",
        "created": 1_700_000_000,
        "livemode": False,
        "data": {"object": {"id": "in_1", "object": "invoice"}},
    }
).encode()


def test_our_signer_signs_as_stripe_does() -> None:
    header = sign_stripe_webhook(BODY, SECRET, timestamp=int(time.time()))

    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, 300) is True
    verify_signature(BODY, header, [SECRET])


def test_any_of_several_secrets_verifies() -> None:
    header = sign_stripe_webhook(BODY, SECRET)

    verify_signature(BODY, header, ["whsec_the_other_secret_value", SECRET])


@pytest.mark.parametrize(("offset", "reason"), [(-301, "tolerance"), (301, "in the future")])
def test_timestamps_beyond_the_tolerance_are_refused_either_way(offset: int, reason: str) -> None:
    header = sign_stripe_webhook(BODY, SECRET, timestamp=int(time.time()) + offset)

    with pytest.raises(WebhookSignatureError, match=reason):
        verify_signature(BODY, header, [SECRET], tolerance=300)


def test_timestamps_within_the_tolerance_are_accepted_either_way() -> None:
    now = time.time()
    for offset in (-290, 290):
        header = sign_stripe_webhook(BODY, SECRET, timestamp=int(now) + offset)
        verify_signature(BODY, header, [SECRET], tolerance=300, now=now)


@pytest.mark.parametrize(
    ("body", "header", "secrets"),
    [
        pytest.param(BODY, None, [SECRET], id="no-header"),
        pytest.param(BODY, "t=abc,v1=def", [SECRET], id="bad-timestamp"),
        pytest.param(BODY, f"t={int(time.time())}", [SECRET], id="no-v1"),
        pytest.param(BODY + b" ", sign_stripe_webhook(BODY, SECRET), [SECRET], id="other-body"),
        pytest.param(BODY, sign_stripe_webhook(BODY, SECRET), [], id="no-secret"),
        pytest.param(b"\xff\xfe", "t=1,v1=00", [SECRET], id="not-utf8"),
    ],
)
def test_unverifiable_webhooks_are_refused(
    body: bytes, header: str | None, secrets: list[str]
) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_signature(body, header, secrets)


def test_a_verified_body_becomes_an_event() -> None:
    event = parse_event(BODY)

    assert (event.id, event.type, event.created) == ("evt_1", "invoice.paid", 1_700_000_000)
    assert event.object == {"id": "in_1", "object": "invoice"}
    assert event.previous_attributes == {}


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"object": "event", "id": "evt_1"}', b'{"object": "list", "data": []}'],
)
def test_bodies_that_are_not_events_are_refused(body: bytes) -> None:
    with pytest.raises(WebhookSignatureError):
        parse_event(body)
