"""Rate limits key a signed-in caller by user, everyone else by address."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from omnistack_core import Installation, create_app, load_settings
from omnistack_core.auth import (
    Authenticator,
    AuthModule,
    CurrentUser,
    DevVerifier,
    Principal,
    TokenVerifier,
    mint_dev_token,
)
from omnistack_core.rate_limit import RateLimit, by_address
from tests.auth.auth_apps import ServiceSettings, bearer

KEY = secrets.token_urlsafe(48)


def limited_auth_app() -> FastAPI:
    settings = load_settings(ServiceSettings, auth_provider="dev", secret_key=KEY)
    app = create_app(settings, modules=[AuthModule(users_table=None)])

    # The limit comes first, so floods without a valid token are limited (by address) too.
    @app.post("/welcome", dependencies=[Depends(RateLimit("2/minute", name="welcome"))])
    async def welcome(user: CurrentUser) -> dict[str, str]:
        return {"to": user.id}

    @app.post("/sign-in", dependencies=[Depends(RateLimit("2/minute", key=by_address))])
    async def sign_in() -> dict[str, bool]:
        return {"ok": True}

    return app


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def user(name: str) -> dict[str, str]:
    return bearer(mint_dev_token(KEY, name))


async def test_signed_in_users_behind_one_address_each_have_their_own_window() -> None:
    app = limited_auth_app()
    async with app.router.lifespan_context(app), client_at(app, "203.0.113.7") as client:
        ada = [(await client.post("/welcome", headers=user("ada"))).status_code for _ in range(3)]
        bob = [(await client.post("/welcome", headers=user("bob"))).status_code for _ in range(3)]

    assert ada == [200, 200, 429]
    assert bob == [200, 200, 429]


async def test_a_user_keeps_their_window_from_another_address() -> None:
    app = limited_auth_app()
    async with app.router.lifespan_context(app):
        async with client_at(app, "203.0.113.7") as office:
            first = [(await office.post("/welcome", headers=user("ada"))).status_code]
            first.append((await office.post("/welcome", headers=user("ada"))).status_code)
        async with client_at(app, "198.51.100.9") as home:
            later = await home.post("/welcome", headers=user("ada"))

    assert first == [200, 200]
    assert later.status_code == 429


async def test_callers_without_a_valid_token_are_limited_by_address_and_get_401() -> None:
    app = limited_auth_app()
    forged = {"Authorization": "Bearer not-a-token"}
    async with app.router.lifespan_context(app), client_at(app, "203.0.113.7") as client:
        statuses = [
            (await client.post("/welcome")).status_code,
            (await client.post("/welcome", headers=forged)).status_code,
            (await client.post("/welcome", headers=forged)).status_code,
        ]
        signed_in = await client.post("/welcome", headers=user("ada"))

    assert statuses == [401, 401, 429]
    # The anonymous window is the address's; a signed-in user behind it has their own.
    assert signed_in.json() == {"to": "ada"}


async def test_a_limit_keyed_by_address_counts_signed_in_users_together() -> None:
    app = limited_auth_app()
    async with app.router.lifespan_context(app), client_at(app, "203.0.113.7") as client:
        statuses = [
            (await client.post("/sign-in", headers=user(name))).status_code
            for name in ("ada", "bob", "eve")
        ]

    assert statuses == [200, 200, 429]


class CountingVerifier(TokenVerifier):
    """Development tokens, verified by the real verifier, counted."""

    provider = "dev"

    def __init__(self) -> None:
        self.inner = DevVerifier(KEY, environment="test")
        self.verified = 0

    async def verify(self, token: str) -> Principal:
        self.verified += 1
        return await self.inner.verify(token)


async def test_the_limit_and_the_route_verify_a_token_once() -> None:
    app = limited_auth_app()
    verifier = CountingVerifier()
    async with app.router.lifespan_context(app), client_at(app, "203.0.113.7") as client:
        Installation.of(app).provide("auth", Authenticator(verifier, users=None))
        response = await client.post("/welcome", headers=user("ada"))

    assert response.json() == {"to": "ada"}
    assert verifier.verified == 1
