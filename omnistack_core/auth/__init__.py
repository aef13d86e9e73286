"""Auth: verify Supabase, Clerk or development tokens; FastAPI dependencies for routes.

Needs the ``auth`` extra: ``pip install 'omnistack-core[auth]'``.
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from omnistack_core.errors import MissingDependencyError

# Checked, not imported: the libraries load when the app starts, not when it is built.
if not all(importlib.util.find_spec(name) for name in ("httpx", "jwt", "cryptography")):
    raise MissingDependencyError("auth", "auth")

from omnistack_core.auth.dependencies import (
    CurrentUser,
    OptionalUser,
    current_principal,
    optional_principal,
    require_permissions,
    require_roles,
)
from omnistack_core.auth.errors import AuthError, AuthUnavailableError, InvalidTokenError
from omnistack_core.auth.module import Authenticator, AuthModule
from omnistack_core.auth.principal import ClerkPrincipal, Principal, SupabasePrincipal
from omnistack_core.auth.settings import AuthSettings
from omnistack_core.auth.tokens import TokenVerifier
from omnistack_core.auth.user_row import CurrentUserRow, current_user_row
from omnistack_core.auth.users import UserRecord, auth_metadata, users

if TYPE_CHECKING:
    from omnistack_core.auth.clerk import ClerkVerifier
    from omnistack_core.auth.dev import DevVerifier, mint_dev_token
    from omnistack_core.auth.jwks_cache import JwksCache, SigningKey
    from omnistack_core.auth.supabase import SupabaseVerifier

# The verifiers load on first use (the module builds only the configured one), so a service
# on Supabase never imports Clerk's, and importing auth does not import httpx.
_LAZY = {
    "ClerkVerifier": "omnistack_core.auth.clerk",
    "DevVerifier": "omnistack_core.auth.dev",
    "JwksCache": "omnistack_core.auth.jwks_cache",
    "SigningKey": "omnistack_core.auth.jwks_cache",
    "SupabaseVerifier": "omnistack_core.auth.supabase",
    "mint_dev_token": "omnistack_core.auth.dev",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AuthError",
    "AuthModule",
    "AuthSettings",
    "AuthUnavailableError",
    "Authenticator",
    "ClerkPrincipal",
    "ClerkVerifier",
    "CurrentUser",
    "CurrentUserRow",
    "DevVerifier",
    "InvalidTokenError",
    "JwksCache",
    "OptionalUser",
    "Principal",
    "SigningKey",
    "SupabasePrincipal",
    "SupabaseVerifier",
    "TokenVerifier",
    "UserRecord",
    "auth_metadata",
    "current_principal",
    "current_user_row",
    "mint_dev_token",
    "optional_principal",
    "require_permissions",
    "require_roles",
    "users",
]
