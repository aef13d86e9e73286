"""Billing on Stripe: Checkout, the Customer Portal, exactly-once webhooks, entitlements.

Plans map names to Stripe prices; ``BillingModule`` mounts ``/api/v1/billing``, keeps each
user's Stripe customer, subscription state and Stripe Entitlements features in the database
from Stripe's webhooks (verified, applied once, in order), and offers
``require_subscription`` and ``require_feature`` to gate routes.

Needs the ``billing`` extra: ``pip install 'omnistack-core[billing]'``. The Stripe SDK is
loaded when billing first talks to Stripe, not on import.
"""

import importlib.util

from omnistack_core.errors import MissingDependencyError

# Checked, not imported: the SDK loads on first use, not on import.
if not all(importlib.util.find_spec(name) for name in ("stripe", "httpx")):
    raise MissingDependencyError("billing", "billing")

from omnistack_core.billing.dependencies import (
    CHECKOUT_PATH,
    Billing,
    billing_of,
    has_active_subscription,
    require_feature,
    require_subscription,
)
from omnistack_core.billing.errors import (
    BillingConflictError,
    BillingError,
    PaymentRequiredError,
    StripeApiError,
    StripeCardError,
    WebhookSignatureError,
)
from omnistack_core.billing.event_log import StoredEvent
from omnistack_core.billing.module import BillingModule
from omnistack_core.billing.plans import Plan
from omnistack_core.billing.settings import BillingSettings
from omnistack_core.billing.stripe_billing import (
    BillingAccount,
    CheckoutSession,
    StripeBilling,
    SyncReport,
)
from omnistack_core.billing.subscriptions import ACTIVE_STATUSES, Subscription
from omnistack_core.billing.tables import (
    billing_customers,
    billing_entitlements,
    billing_events,
    billing_metadata,
    billing_subscriptions,
)
from omnistack_core.billing.webhook_ingest import BillingEventHandler, WebhookIngest
from omnistack_core.billing.webhook_signature import StripeEvent, parse_event, verify_signature

__all__ = [
    "ACTIVE_STATUSES",
    "CHECKOUT_PATH",
    "Billing",
    "BillingAccount",
    "BillingConflictError",
    "BillingError",
    "BillingEventHandler",
    "BillingModule",
    "BillingSettings",
    "CheckoutSession",
    "PaymentRequiredError",
    "Plan",
    "StoredEvent",
    "StripeApiError",
    "StripeBilling",
    "StripeCardError",
    "StripeEvent",
    "Subscription",
    "SyncReport",
    "WebhookIngest",
    "WebhookSignatureError",
    "billing_customers",
    "billing_entitlements",
    "billing_events",
    "billing_metadata",
    "billing_of",
    "billing_subscriptions",
    "has_active_subscription",
    "parse_event",
    "require_feature",
    "require_subscription",
    "verify_signature",
]
