"""What the verified claims of each provider become."""

from __future__ import annotations

from omnistack_core.auth.clerk import principal_from_clerk
from omnistack_core.auth.supabase import principal_from_supabase
from omnistack_core.testing.issuer import LocalIssuer

SIGNER = LocalIssuer(algorithms=("ES256",))


def test_a_supabase_principal_carries_the_documented_fields() -> None:
    claims = {
        "sub": "8d2c-uuid",
        "email": "ada@example.com",
        "phone": "+15550100",
        "role": "authenticated",
        "aal": "aal2",
        "session_id": "sess-1",
        "app_metadata": {"provider": "email", "roles": ["editor"], "permissions": ["posts:write"]},
        "user_metadata": {"name": "Ada", "roles": ["admin"]},
    }

    principal = principal_from_supabase(claims)

    assert (principal.id, principal.email, principal.phone) == (
        "8d2c-uuid",
        "ada@example.com",
        "+15550100",
    )
    assert (principal.role, principal.aal, principal.session_id) == (
        "authenticated",
        "aal2",
        "sess-1",
    )
    assert principal.roles == {"authenticated", "editor"}  # never from user_metadata
    assert principal.permissions == {"posts:write"}
    assert principal.user_metadata == {"name": "Ada", "roles": ["admin"]}
    assert principal.claims is claims


def test_a_clerk_v1_token_gives_its_organization() -> None:
    principal = principal_from_clerk(
        {
            "sub": "user_1",
            "sid": "sess_1",
            "azp": "https://app.example.com",
            "org_id": "org_9",
            "org_role": "org:admin",
            "org_slug": "acme",
            "org_permissions": ["org:invoices:read", "org:teams:manage"],
        }
    )

    assert (principal.org_id, principal.org_role, principal.org_slug) == (
        "org_9",
        "org:admin",
        "acme",
    )
    assert principal.roles == {"org:admin"}
    assert principal.permissions == {"org:invoices:read", "org:teams:manage"}
    assert (principal.session_id, principal.authorized_party) == (
        "sess_1",
        "https://app.example.com",
    )


def test_a_clerk_v2_token_decodes_the_packed_permissions() -> None:
    # Clerk's own example: features dashboard and teams, permissions manage and read,
    # masks 3 (both) and 2 (read only).
    principal = principal_from_clerk(
        {
            "sub": "user_2",
            "v": 2,
            "fea": "o:dashboard,o:teams",
            "o": {
                "id": "org_2",
                "rol": "admin",
                "slg": "globex",
                "per": "manage,read",
                "fpm": "3,2",
            },
        }
    )

    assert (principal.org_id, principal.org_role, principal.org_slug) == (
        "org_2",
        "org:admin",
        "globex",
    )
    assert principal.permissions == {
        "org:dashboard:manage",
        "org:dashboard:read",
        "org:teams:read",
    }


def test_a_clerk_token_without_an_organization_has_no_roles() -> None:
    principal = principal_from_clerk({"sub": "user_3", "v": 2, "fea": "u:beta"})

    assert principal.org_id is None
    assert principal.roles == frozenset()
    assert principal.permissions == frozenset()


def test_user_scoped_features_grant_no_organization_permissions() -> None:
    principal = principal_from_clerk(
        {"sub": "u", "fea": "u:beta,o:reports", "o": {"id": "org", "per": "read", "fpm": "1,1"}}
    )

    assert principal.permissions == {"org:reports:read"}
