"""User tokens a deployed service accepts without reaching Supabase: its legacy HS256 secret.

A service configured for production verifies Supabase tokens against the project's JWKS, which
no test here can reach; given ``SUPABASE_JWT_SECRET`` it also accepts tokens signed with the
project's legacy secret, as Supabase signs them, and that is what these tests sign with.
"""

from __future__ import annotations

import time

import jwt

LEGACY_JWT_SECRET = "legacy-jwt-secret-" + "s" * 32


def legacy_supabase_token(project_url: str, sub: str) -> str:
    """A user token of the Supabase project at ``project_url``, valid for five minutes."""
    now = int(time.time())
    claims = {
        "iss": f"{project_url}/auth/v1",
        "aud": "authenticated",
        "sub": sub,
        "role": "authenticated",
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode(claims, LEGACY_JWT_SECRET, algorithm="HS256")
