"""The peer as uvicorn serves it: Sentry initialised at import, then the app.

    PEER_DATABASE_URL=postgresql+psycopg://... PEER_SECRET_KEY=... \
        uvicorn benchmarks.peers.fsft.main:app --host 127.0.0.1 --port 8000

The template calls ``sentry_sdk.init(dsn=..., enable_tracing=True)`` when a DSN is set outside
local development. Issue 20 defines the peer as ``sentry_sdk.init()`` with the SDK's defaults
and no DSN, as the template runs when measured without a Sentry project: the SDK is imported
and its integrations patch FastAPI, Starlette and SQLAlchemy, but no transaction is recorded
per request. (With tracing on, every request would also build a transaction: that would make
the peer slower than the measured template, and our ratios look better than they are.)

Sentry enables an integration for every supported library it finds installed. This
virtualenv holds far more than the template's (OpenAI, Anthropic, Redis, arq, asyncpg, …),
and each would be imported and patched at start-up; so the peer names the integrations the
template's own environment enables (FastAPI, Starlette, SQLAlchemy, HTTPX, beside the SDK's
defaults) and turns the automatic search off.
"""

from __future__ import annotations

import sys

# The template's lock file has no `cryptography`; PyJWT imports it whenever it is installed
# (about 9 MiB of the process), and this virtualenv has it for our auth extra. The peer
# signs and checks HS256 only, which PyJWT does without it, so it is kept out, before
# anything can import it.
if "cryptography" not in sys.modules:
    sys.modules["cryptography"] = None  # type: ignore[assignment]

import sentry_sdk
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.httpx import HttpxIntegration
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration

from benchmarks.peers.fsft.api import create_app

sentry_sdk.init(
    dsn=None,
    auto_enabling_integrations=False,
    integrations=[
        StarletteIntegration(),
        FastApiIntegration(),
        SqlalchemyIntegration(),
        HttpxIntegration(),
    ],
)

app = create_app()
