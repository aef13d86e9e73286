"""Who made the request: the verified claims of a token, in a typed form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user.

    Attributes:
        id: The token's ``sub``: the user's id at the issuer.
        provider: ``supabase``, ``clerk`` or ``dev``.
        email: The email address, when the token carries one.
        session_id: The issuer's session id, when the token carries one.
        roles: Roles for :func:`~omnistack_core.auth.require_roles`.
        permissions: Permissions for :func:`~omnistack_core.auth.require_permissions`.
        claims: Every verified claim, as the issuer sent it.
    """

    id: str
    provider: str
    email: str | None = None
    session_id: str | None = None
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class SupabasePrincipal(Principal):
    """A Supabase user.

    ``roles`` holds the ``role`` claim (``authenticated``) and the names in
    ``app_metadata.roles`` / ``app_metadata.role``; ``permissions`` those in
    ``app_metadata.permissions``. Only the server can write ``app_metadata``, so both can be
    trusted; ``user_metadata`` is the user's own to edit and is never used for access.

    Attributes:
        phone: The phone number, when the token carries one.
        role: The Postgres role of the token (``authenticated``).
        aal: The authenticator assurance level (``aal1``, ``aal2`` after MFA).
        app_metadata: Server-controlled user data.
        user_metadata: User-controlled user data.
    """

    phone: str | None = None
    role: str | None = None
    aal: str | None = None
    app_metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    user_metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class ClerkPrincipal(Principal):
    """A Clerk user, with the active organization when there is one.

    ``roles`` holds the organization role (``org:admin``); ``permissions`` the organization
    permissions (``org:invoices:read``), from session tokens of version 1 or 2 alike.

    Attributes:
        org_id: The active organization's id.
        org_role: The user's role in it, as ``org:<role>``.
        org_slug: The organization's slug.
        authorized_party: The ``azp`` claim: the origin the token was made for.
    """

    org_id: str | None = None
    org_role: str | None = None
    org_slug: str | None = None
    authorized_party: str | None = None
