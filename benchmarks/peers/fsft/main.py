"""The peer as uvicorn serves it: Sentry initialised at import, then the app.

    PEER_DATABASE_URL=postgresql+psycopg://... PEER_SECRET_KEY=... \
        uvicorn benchmarks.peers.fsft.main:app --host 127.0.0.1 --port 8000

The template calls ``sentry_sdk.init(dsn=..., enable_tracing=True)`` when a DSN is set outside
local development. Issue 20 defines the peer as ``sentry_sdk.init()`` with the SDK's defaults
and no DSN, as the template runs when measured without a Sentry project: the SDK is imported
and its integrations patch FastAPI, Starlette and SQLAlchemy, but no transaction is recorded
per request. (With tracing on, every request would also build a transaction: that would make
the peer slower than the measured template, and our ratios look better than they are.)

Sentry enables an integration for every supported library it finds installed. The peer
names the integrations the template's own environment enables (FastAPI, Starlette,
SQLAlchemy, HTTPX, beside the SDK's defaults) and turns the automatic search off, so that
it patches the same libraries wherever it runs (the repository's dev virtualenv, in the
tests, holds many more: OpenAI, Redis, arq, asyncpg, …).

The benchmark runs it from its own virtualenv (``requirements.txt`` beside this file: the
template's runtime dependencies), which, like the template's, holds no ``cryptography``.
"""

from __future__ import annotations

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
