"""The service's routes, under ``/api/v1`` beside the billing module's ``/billing``."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from omnistack_core import ProblemError
from omnistack_core.ai import AI, ChatRequest, Message, response_body, sse_response
from omnistack_core.auth import CurrentUser, Principal
from omnistack_core.billing import Billing, require_feature, require_subscription
from omnistack_core.db import DbSession
from omnistack_core.db.upsert import insert_ignoring_duplicate
from omnistack_core.email import Mailer, render_email, send_email_later
from omnistack_core.jobs import Queue

from .settings import SaasSettings
from .tables import accounts

router = APIRouter()

PLAN = "pro"
"""The plan that unlocks summaries (a name in ``BILLING_PLANS``)."""
KEY_POINTS_FEATURE = "key-points"
"""The Stripe Entitlements feature (its lookup key) that unlocks key points."""

# Every character reaches a paid model, and its quota reservation grows with the input.
MAX_TEXT_CHARACTERS = 20_000
SUMMARY_MAX_TOKENS = 300
KEY_POINTS_MAX_TOKENS = 500

SUMMARY_PROMPT = "Summarize the user's text in at most three sentences. Answer with the summary."
KEY_POINTS_PROMPT = "List the main points of the user's text, at most ten, each one sentence."


class AccountIn(BaseModel):
    """What the customer tells the service after signing up."""

    name: str = Field(min_length=1, max_length=100)


class AccountOut(BaseModel):
    """The account as saved."""

    id: str
    name: str
    email: str | None


class AIUsage(BaseModel):
    """AI budget used in the current quota window."""

    tokens: int
    calls: int


class AccountState(AccountOut):
    """The account with what the customer pays for and has used."""

    plan: str | None
    ai_usage: AIUsage | None
    """None when the service sets no AI quota."""


class TextIn(BaseModel):
    """A text to work on."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARACTERS)


class SummaryIn(TextIn):
    """A text to summarize, and how to answer."""

    stream: bool = False
    """Answer as Server-Sent Events (``delta`` events, then ``done``) instead of JSON."""


class KeyPoints(BaseModel):
    """The main points of a text."""

    points: list[str] = Field(max_length=10)


def _settings(request: Request) -> SaasSettings:
    settings: SaasSettings = request.app.state.settings
    return settings


ServiceSettings = Annotated[SaasSettings, Depends(_settings)]


@router.put("/account")
async def save_account(
    *,
    body: AccountIn,
    user: CurrentUser,
    session: DbSession,
    queue: Queue,
    mailer: Mailer,
    settings: ServiceSettings,
) -> AccountOut:
    """Create the caller's account (and welcome them by email), or rename it."""
    created = await insert_ignoring_duplicate(
        session,
        accounts,
        {"user_id": user.id, "name": body.name, "created_at": datetime.now(UTC)},
    )
    if not created:
        await session.execute(
            update(accounts).where(accounts.c.user_id == user.id).values(name=body.name)
        )
    elif user.email is not None:
        welcome = render_email(
            "welcome",
            {"product_name": settings.product_name, "name": body.name},
            templates=mailer.templates,
        )
        # In the account's transaction (the jobs outbox): no email for an account that was
        # not saved, and the key makes it one email however often this runs.
        await send_email_later(
            queue,
            welcome.message(to=user.email),
            idempotency_key=f"welcome/{user.id}",
            session=session,
        )
    return AccountOut(id=user.id, name=body.name, email=user.email)


@router.get("/account")
async def read_account(
    user: CurrentUser, session: DbSession, billing: Billing, ai: AI
) -> AccountState:
    """The caller's account, plan and AI budget used."""
    name = await session.scalar(select(accounts.c.name).where(accounts.c.user_id == user.id))
    if name is None:
        raise ProblemError(404, "There is no account yet: PUT /api/v1/account creates it.")
    subscription = await billing.subscription(user.id)
    usage = None
    if ai.quota is not None:
        tokens, calls = await ai.quota.spent(user.id)
        usage = AIUsage(tokens=tokens, calls=calls)
    return AccountState(
        id=user.id,
        name=name,
        email=user.email,
        plan=subscription.plan if subscription is not None else None,
        ai_usage=usage,
    )


@router.post(
    "/summaries",
    response_model=None,
    dependencies=[Depends(require_subscription(plans=[PLAN]))],
)
async def summarize(
    body: SummaryIn, user: CurrentUser, ai: AI
) -> dict[str, Any] | StreamingResponse:
    """A short summary of the text, for subscribers; counted against the caller's AI quota."""
    request = ChatRequest(
        [Message.system(SUMMARY_PROMPT), Message.user(body.text)],
        max_tokens=SUMMARY_MAX_TOKENS,
        user_id=user.id,
    )
    if body.stream:
        return await sse_response(ai.stream(request))
    return response_body(await ai.chat(request))


@router.post("/key-points")
async def key_points(
    body: TextIn,
    user: Annotated[Principal, Depends(require_feature(KEY_POINTS_FEATURE))],
    ai: AI,
) -> KeyPoints:
    """The text's main points as a list, for customers whose plan has the feature."""
    request = ChatRequest(
        [Message.system(KEY_POINTS_PROMPT), Message.user(body.text)],
        max_tokens=KEY_POINTS_MAX_TOKENS,
        user_id=user.id,
    )
    return await ai.structured(request, KeyPoints)
