"""Apps with the auth module, shared by the auth tests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from omnistack_core import Settings, create_app
from omnistack_core.auth import (
    AuthModule,
    AuthSettings,
    CurrentUser,
    OptionalUser,
    Principal,
    require_permissions,
    require_roles,
)
from omnistack_core.settings import load_settings
from omnistack_core.testing.issuer import LocalIssuer


class ServiceSettings(Settings, AuthSettings):
    """The settings of a service with the auth module."""


def auth_app(**settings: Any) -> FastAPI:
    """An app with the auth module and a few protected routes."""
    app = create_app(load_settings(ServiceSettings, **settings), modules=[AuthModule()])

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"id": user.id, "provider": user.provider, "email": user.email}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any]:
        return {"id": user.id if user else None}

    @app.get("/admin")
    async def admin(
        user: Annotated[Principal, Depends(require_roles("org:admin", "admin"))],
    ) -> dict[str, str]:
        return {"id": user.id}

    @app.get("/invoices", dependencies=[Depends(require_permissions("org:invoices:read"))])
    async def invoices() -> dict[str, bool]:
        return {"ok": True}

    return app


def supabase_settings(issuer: LocalIssuer, **extra: Any) -> dict[str, Any]:
    return {"auth_provider": "supabase", "supabase_project_url": issuer.url, **extra}


def clerk_settings(issuer: LocalIssuer, **extra: Any) -> dict[str, Any]:
    return {"auth_provider": "clerk", "clerk_issuer_url": issuer.url, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
