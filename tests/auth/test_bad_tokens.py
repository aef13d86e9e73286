"""Every token an attacker or a mistake can produce is refused with the same generic 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI

from omnistack_core.auth import mint_dev_token
from omnistack_core.testing import app_client
from omnistack_core.testing.issuer import IssuerKey, LocalIssuer
from tests.auth.auth_apps import auth_app, bearer, clerk_settings, supabase_settings

LEGACY_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


@dataclass(frozen=True)
class Case:
    """A bad token, and the app (supabase, clerk, production) it is sent to."""

    make: Callable[[LocalIssuer, LocalIssuer], str]
    app: str = "supabase"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> list[str]:
    return token.split(".")


def unsigned(issuer: LocalIssuer, _: LocalIssuer) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(issuer.supabase_claims()).encode())}."


def hmac_with_public_key(issuer: LocalIssuer, _: LocalIssuer) -> str:
    # The classic confusion: HS256, keyed with the issuer's RSA public key as a shared secret.
    public_pem = (
        issuer.key("RS256")
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "kid": issuer.key("RS256").kid}).encode())
    payload = b64(json.dumps(issuer.supabase_claims()).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def tampered_payload(issuer: LocalIssuer, _: LocalIssuer) -> str:
    header, _payload, signature = segments(issuer.supabase_token("user-1"))
    forged = b64(json.dumps(issuer.supabase_claims("admin-user")).encode())
    return f"{header}.{forged}.{signature}"


def tampered_header(issuer: LocalIssuer, _: LocalIssuer) -> str:
    token = issuer.supabase_token()
    header, payload, signature = segments(token)
    forged = json.loads(base64.urlsafe_b64decode(header + "=="))
    forged["typ"] = "at+jwt"
    return f"{b64(json.dumps(forged).encode())}.{payload}.{signature}"


def jku_to_attacker(issuer: LocalIssuer, attacker: LocalIssuer) -> str:
    # The attacker serves their own JWKS and points the token at it; we must not follow.
    key = attacker.key("RS256")
    return attacker.sign(
        issuer.supabase_claims(), key=key, headers={"jku": attacker.url + "/.well-known/jwks.json"}
    )


def oversized(issuer: LocalIssuer, _: LocalIssuer) -> str:
    return issuer.supabase_token(padding="x" * 9 * 1024)


def supabase_api_key(role: str) -> Callable[[LocalIssuer, LocalIssuer], str]:
    def make(_: LocalIssuer, __: LocalIssuer) -> str:
        now = int(time.time())
        claims = {"iss": "supabase", "ref": "abc", "role": role, "iat": now, "exp": now + 3600}
        return jwt.encode(claims, LEGACY_SECRET, algorithm="HS256")

    return make


def legacy_user_token(**claims: Any) -> Callable[[LocalIssuer, LocalIssuer], str]:
    def make(issuer: LocalIssuer, _: LocalIssuer) -> str:
        return jwt.encode(issuer.supabase_claims(**claims), LEGACY_SECRET, algorithm="HS256")

    return make


def without(*names: str) -> Callable[[LocalIssuer, LocalIssuer], str]:
    def make(issuer: LocalIssuer, _: LocalIssuer) -> str:
        claims = issuer.supabase_claims()
        for name in names:
            del claims[name]
        return issuer.sign(claims)

    return make


NOW = int(time.time())
CASES: dict[str, Case] = {
    "alg none": Case(unsigned),
    "HS256 keyed with the RSA public key": Case(hmac_with_public_key),
    "HS256 without a legacy secret configured": Case(legacy_user_token()),
    "expired": Case(lambda i, _: i.supabase_token(exp=NOW - 3600, iat=NOW - 7200)),
    "nbf in the future": Case(lambda i, _: i.supabase_token(nbf=NOW + 3600)),
    "iat in the future": Case(lambda i, _: i.supabase_token(iat=NOW + 3600, exp=NOW + 7200)),
    "wrong issuer": Case(lambda i, _: i.supabase_token(iss="https://evil.supabase.co/auth/v1")),
    "wrong audience": Case(lambda i, _: i.supabase_token(aud="anon")),
    "no sub": Case(without("sub")),
    "empty sub": Case(lambda i, _: i.supabase_token(sub="")),
    "no exp": Case(without("exp")),
    "no iat": Case(without("iat")),
    "unknown kid": Case(lambda i, _: i.sign(i.supabase_claims(), key=IssuerKey.generate("ES256"))),
    "known kid, other key": Case(
        lambda i, _: i.sign(
            i.supabase_claims(),
            key=IssuerKey("x", "RS256", IssuerKey.generate("RS256").private_key),
            headers={"kid": i.key("RS256").kid},
        )
    ),
    "ES256 claimed for an RSA key": Case(
        lambda i, _: i.sign(
            i.supabase_claims(), key=i.key("ES256"), headers={"kid": i.key("RS256").kid}
        )
    ),
    "payload tampered": Case(tampered_payload),
    "header tampered": Case(tampered_header),
    "signature stripped": Case(lambda i, _: i.supabase_token().rsplit(".", 1)[0] + "."),
    "jku pointing at an attacker JWKS": Case(jku_to_attacker),
    "9 KB token": Case(oversized),
    "malformed base64": Case(lambda i, _: "eyJhbGciOiJSUzI1NiJ9.%%%notbase64%%%.c2ln"),
    "malformed JSON": Case(lambda i, _: f"{b64(b'{not json')}.{b64(b'{}')}.{b64(b'sig')}"),
    "not a JWT at all": Case(lambda i, _: "hello"),
    "Supabase anon API key": Case(supabase_api_key("anon"), app="supabase-legacy"),
    "Supabase service_role API key": Case(supabase_api_key("service_role"), app="supabase-legacy"),
    "legacy HS256 token of another project": Case(
        legacy_user_token(iss="https://other.supabase.co/auth/v1"), app="supabase-legacy"
    ),
    "Clerk token with a wrong azp": Case(
        lambda i, _: i.clerk_token(azp="https://evil.example.com"), app="clerk"
    ),
    "Clerk token of a pending session": Case(
        lambda i, _: i.clerk_token(sts="pending"), app="clerk"
    ),
    "Clerk token signed with ES256": Case(
        lambda i, _: i.sign(i.clerk_claims(), key=i.key("ES256")), app="clerk"
    ),
    "Supabase token sent to a Clerk app": Case(lambda i, _: i.supabase_token(), app="clerk"),
    "dev token in production": Case(
        lambda _, __: mint_dev_token("k" * 40, "user-1"), app="production"
    ),
}


@pytest.fixture(scope="module")
def issuers() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    with LocalIssuer() as issuer, LocalIssuer() as attacker:
        yield issuer, attacker


def app_for(kind: str, issuer: LocalIssuer) -> FastAPI:
    if kind == "supabase":
        return auth_app(**supabase_settings(issuer))
    if kind == "supabase-legacy":
        return auth_app(**supabase_settings(issuer, supabase_jwt_secret=LEGACY_SECRET))
    if kind == "clerk":
        return auth_app(**clerk_settings(issuer, clerk_authorized_parties="http://localhost:3000"))
    return auth_app(
        environment="production",
        secret_key="k" * 40,
        database_url="sqlite+aiosqlite:///./prod.db",
        auth_provider="supabase",
        supabase_project_url="https://example.supabase.co",
    )


def test_the_table_holds_twenty_distinct_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", list(CASES))
async def test_a_bad_token_is_refused_with_a_generic_401(
    name: str, issuers: tuple[LocalIssuer, LocalIssuer]
) -> None:
    issuer, attacker = issuers
    case = CASES[name]
    token = case.make(issuer, attacker)
    attacker_requests = attacker.jwks_requests

    async with app_client(app_for(case.app, issuer)) as client:
        response = await client.get("/me", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The access token is not valid."
    assert attacker.jwks_requests == attacker_requests


@pytest.mark.parametrize("app_kind", ["supabase", "supabase-legacy", "clerk"])
async def test_the_good_token_of_each_app_is_accepted(
    app_kind: str, issuers: tuple[LocalIssuer, LocalIssuer]
) -> None:
    # The control: the same apps accept a well-formed token, so the 401s above are earned.
    issuer, _ = issuers
    tokens = {
        "supabase": issuer.supabase_token("user-1"),
        "supabase-legacy": legacy_user_token()(issuer, issuer),
        "clerk": issuer.clerk_token("user_1"),
    }

    async with app_client(app_for(app_kind, issuer)) as client:
        response = await client.get("/me", headers=bearer(tokens[app_kind]))

    assert response.status_code == 200
