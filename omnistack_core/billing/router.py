"""``/api/v1/billing``: Checkout, the Customer Portal, the subscription, and Stripe's webhook."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from omnistack_core.auth import CurrentUser
from omnistack_core.billing.dependencies import Billing
from omnistack_core.billing.errors import WebhookSignatureError
from omnistack_core.billing.metrics import count_webhook_event
from omnistack_core.billing.webhook_ingest import WEBHOOKS, WebhookIngest
from omnistack_core.billing.webhook_signature import parse_event, verify_signature
from omnistack_core.body_limit import read_bounded_body
from omnistack_core.errors import ProblemError
from omnistack_core.installation import resource_of
from omnistack_core.openapi import problem_responses, webhook_operation
from omnistack_core.validation import StorableStr, UtcDateTime

logger = logging.getLogger("omnistack.billing")

router = APIRouter(prefix="/billing", tags=["billing"])


class CheckoutRequest(BaseModel):
    """What to buy."""

    plan: StorableStr = Field(min_length=1, max_length=64, examples=["pro"])
    """The plan's name."""
    quantity: int = Field(default=1, ge=1, le=10_000)
    """Seats."""


class CheckoutResponse(BaseModel):
    """Where to send the customer."""

    id: str
    """Stripe's Checkout Session id (``cs_…``)."""
    url: str
    """The Checkout page."""


class PortalResponse(BaseModel):
    """Where the customer manages their subscription."""

    url: str
    """The Customer Portal page."""


class SubscriptionState(BaseModel):
    """A subscription as the service knows it."""

    id: str
    status: str
    plan: str | None
    price_id: str | None
    quantity: int
    current_period_end: UtcDateTime | None
    cancel_at_period_end: bool
    trial_end: UtcDateTime | None


class SubscriptionResponse(BaseModel):
    """The signed-in user's billing state."""

    active: bool
    """Whether a subscription grants access now (active or trialing)."""
    plan: str | None
    """The plan of that subscription."""
    subscription: SubscriptionState | None
    """The most relevant subscription, in any status; None before the first checkout."""
    features: list[str]
    """Stripe Entitlements features the user has."""


@router.post("/checkout", responses=problem_responses(402, 409))
async def create_checkout(
    body: CheckoutRequest, user: CurrentUser, billing: Billing
) -> CheckoutResponse:
    """Start a Checkout Session for a plan; send the customer to its ``url``."""
    session = await billing.checkout(user.id, body.plan, email=user.email, quantity=body.quantity)
    return CheckoutResponse(id=session.id, url=session.url)


@router.post("/portal", responses=problem_responses(409))
async def create_portal(user: CurrentUser, billing: Billing) -> PortalResponse:
    """Open a Customer Portal session; send the customer to its ``url``."""
    return PortalResponse(url=await billing.portal_url(user.id))


@router.get("/subscription")
async def read_subscription(user: CurrentUser, billing: Billing) -> SubscriptionResponse:
    """The user's subscription and features, as last heard from Stripe."""
    subscription = await billing.latest_subscription(user.id)
    features = await billing.features(user.id)
    active = subscription is not None and subscription.active
    return SubscriptionResponse(
        active=active,
        plan=subscription.plan if subscription is not None and active else None,
        subscription=SubscriptionState(
            id=subscription.id,
            status=subscription.status,
            plan=subscription.plan,
            price_id=subscription.price_id,
            quantity=subscription.quantity,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            trial_end=subscription.trial_end,
        )
        if subscription is not None
        else None,
        features=sorted(features),
    )


@router.post(
    "/webhook",
    responses=problem_responses(400, 413, 503),
    openapi_extra=webhook_operation("A Stripe event, as Stripe sends it.", ["Stripe-Signature"]),
)
async def receive_webhook(request: Request) -> dict[str, str]:
    """Stripe's events: 200 once applied (or already applied), 400 refused, 5xx to retry."""
    ingest = resource_of(request.app, WEBHOOKS, WebhookIngest)
    settings = ingest.billing.settings
    if not settings.webhook_secrets:
        raise ProblemError(503, "Billing webhooks are not configured: set STRIPE_WEBHOOK_SECRET.")
    body = await read_bounded_body(request, settings.billing_webhook_max_bytes, what="Webhook")
    try:
        verify_signature(
            body,
            request.headers.get("stripe-signature"),
            settings.webhook_secrets,
            tolerance=settings.stripe_webhook_tolerance,
        )
        event = parse_event(body)
    except WebhookSignatureError as exc:
        # Why, for whoever sets the endpoint up; the caller learns only that it was refused.
        logger.warning("Refused a Stripe webhook: %s", exc)
        count_webhook_event("unverified", "refused")
        raise ProblemError(400, "The webhook could not be verified.") from None
    try:
        outcome = await ingest.ingest(event)
    except Exception:  # noqa: BLE001 - logged and recorded by ingest
        # The 5xx makes Stripe deliver the event again.
        raise ProblemError(500, "The event could not be processed; it will be retried.") from None
    logger.info("Stripe event %s (%s): %s", event.id, event.type, outcome)
    return {"status": outcome}
