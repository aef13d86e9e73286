"""Typed use of the billing API; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core import create_app
from omnistack_core.auth import AuthModule, CurrentUser
from omnistack_core.billing import (
    Billing,
    BillingModule,
    Plan,
    StripeEvent,
    Subscription,
    SyncReport,
    has_active_subscription,
    require_feature,
    require_subscription,
)

billing = BillingModule(plans=[Plan(name="pro", price="price_123", trial_days=14)])
receipts: list[tuple[str, int, object]] = []


@billing.on("invoice.paid")
async def send_receipt(event: StripeEvent, session: AsyncSession) -> None:
    receipts.append((event.id, event.created, event.object.get("amount_paid")))


app: FastAPI = create_app(modules=[AuthModule(), billing])


@app.get("/reports")
async def reports(
    subscription: Annotated[Subscription, Depends(require_subscription(plans=["pro"]))],
) -> dict[str, str | None]:
    return {"plan": subscription.plan, "status": subscription.status}


@app.get("/exports", dependencies=[Depends(require_feature("csv-export"))])
async def exports(user: CurrentUser, service: Billing) -> list[str]:
    return sorted(await service.features(user.id))


async def nightly(user_id: str) -> bool:
    report: SyncReport = await BillingModule.of(app).sync()
    return report.corrected == 0 and await has_active_subscription(app, user_id, plans=["pro"])
