"""Who gets into the console: links, sessions, signed-in admins, CSRF, production."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx
import pytest

from omnistack_core.auth import AuthModule, mint_dev_token
from omnistack_core.cli import main
from omnistack_core.console import ConsoleModule, mint_link
from omnistack_core.console.access import SESSION_COOKIE
from omnistack_core.testing import app_client
from tests.console.service import SECRET_KEY, console_app

LOCAL = "http://localhost"


async def sign_in(client: httpx.AsyncClient, operator: str = "ops@example.com") -> httpx.Response:
    token = mint_link(SECRET_KEY, operator, minutes=5)
    page = await client.get("/console/login", params={"token": token})
    assert page.status_code == 200
    return await client.post("/console/login", data={"token": token, "next": "/console"})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def test_an_anonymous_visitor_is_sent_to_the_login_page() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        response = await client.get("/console/jobs?x=1")
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fjobs%3Fx%3D1"
        login = await client.get(response.headers["location"])
        assert "omnistack console-link" in login.text


async def test_a_link_signs_in_once_and_the_session_opens_the_console() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        token = mint_link(SECRET_KEY, "ops@example.com", minutes=5)
        # Opening the link spends nothing: only its button's POST does.
        assert (await client.get("/console/login", params={"token": token})).status_code == 200
        assert (await client.get("/console/login", params={"token": token})).status_code == 200
        signed_in = await client.post("/console/login", data={"token": token, "next": "/console"})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/console"
        overview = await client.get("/console")
        assert overview.status_code == 200
        assert "console-test" in overview.text
        assert "ops@example.com" in overview.text
        client.cookies.clear()
        again = await client.post("/console/login", data={"token": token})
        assert again.status_code == 403
        assert "already used" in again.text


@pytest.mark.parametrize(
    "token",
    [
        mint_link("another-key-" + "x" * 32, "ops", minutes=5),
        mint_link(SECRET_KEY, "ops", minutes=5)[:-2] + "AA",
        "not-a-token",
        "",
    ],
    ids=["other key", "tampered", "garbage", "empty"],
)
async def test_a_bad_link_is_refused(token: str) -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        response = await client.post("/console/login", data={"token": token})
        assert response.status_code == 403
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_an_expired_link_is_refused() -> None:
    from omnistack_core.console import signing  # noqa: PLC0415

    token = signing.sign(SECRET_KEY, "console-link", {"op": "ops", "nonce": "n"}, seconds=-1)
    async with app_client(console_app(), base_url=LOCAL) as client:
        assert (await client.post("/console/login", data={"token": token})).status_code == 403


async def test_a_session_cookie_cannot_be_used_as_a_link_nor_a_link_as_a_cookie() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        await sign_in(client)
        cookie = client.cookies[SESSION_COOKIE]
        client.cookies.clear()
        assert (await client.post("/console/login", data={"token": cookie})).status_code == 403
        link = mint_link(SECRET_KEY, "ops", minutes=5)
        client.cookies.set(SESSION_COOKIE, link, domain="localhost", path="/console")
        assert (await client.get("/console")).status_code == 303


async def test_the_session_cookie_is_http_only_strict_with_an_expiry() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        cookie = (await sign_in(client)).headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=28800" in cookie
    assert "Path=/console" in cookie
    # Plain http to the machine itself in test: not Secure, or the browser would drop it.
    assert "Secure" not in cookie


@pytest.mark.parametrize(
    ("base_url", "environment"),
    [("https://localhost", "test"), ("http://ops.example.com", "test"), (LOCAL, "staging")],
)
async def test_the_session_cookie_is_secure_everywhere_else(
    base_url: str, environment: str
) -> None:
    app = console_app(environment=environment, database_url="sqlite+aiosqlite:///:memory:")
    async with app_client(app, base_url=base_url) as client:
        cookie = (await sign_in(client)).headers["set-cookie"]
    assert "Secure" in cookie


async def test_pages_are_not_cached_framed_or_referred() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        await sign_in(client)
        response = await client.get("/console")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_a_post_without_the_csrf_token_is_refused_and_with_it_accepted() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        await sign_in(client)
        token = csrf_of(await client.get("/console"))
        refused = await client.post("/console/logout", data={})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        wrong = await client.post("/console/logout", data={"csrf_token": token[::-1]})
        assert wrong.status_code == 403
        assert (await client.get("/console")).status_code == 200  # still signed in
        out = await client.post("/console/logout", data={"csrf_token": token})
        assert out.status_code == 303
        assert (await client.get("/console")).status_code == 303


def auth_app() -> object:
    return console_app([AuthModule(users_table=None)], auth_provider="dev")


async def test_a_signed_in_user_without_the_admin_role_gets_403() -> None:
    token = mint_dev_token(SECRET_KEY, "user-1", roles=["member"])
    async with app_client(auth_app(), base_url=LOCAL) as client:  # type: ignore[arg-type]
        response = await client.get("/console", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "admin" in response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_a_signed_in_admin_is_let_in_and_acts_with_a_csrf_token_of_their_own() -> None:
    admin = mint_dev_token(SECRET_KEY, "admin-1", roles=["admin"])
    other = mint_dev_token(SECRET_KEY, "admin-2", roles=["admin"])
    async with app_client(auth_app(), base_url=LOCAL) as client:  # type: ignore[arg-type]
        page = await client.get("/console", headers={"Authorization": f"Bearer {admin}"})
        other_page = await client.get("/console", headers={"Authorization": f"Bearer {other}"})
    assert page.status_code == 200
    assert "admin-1" in page.text
    assert csrf_of(page) != csrf_of(other_page)


async def test_an_invalid_token_is_sent_to_the_login_page() -> None:
    async with app_client(auth_app(), base_url=LOCAL) as client:  # type: ignore[arg-type]
        response = await client.get("/console", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 303


async def test_a_configured_permission_replaces_the_role() -> None:
    app = console_app(
        [AuthModule(users_table=None)], auth_provider="dev", console_permission="ops:console"
    )
    admin = mint_dev_token(SECRET_KEY, "a", roles=["admin"])
    holder = mint_dev_token(SECRET_KEY, "b", permissions=["ops:console"])
    async with app_client(app, base_url=LOCAL) as client:
        denied = await client.get("/console", headers={"Authorization": f"Bearer {admin}"})
        allowed = await client.get("/console", headers={"Authorization": f"Bearer {holder}"})
    assert (denied.status_code, allowed.status_code) == (403, 200)


async def test_the_console_is_absent_in_production_unless_enabled() -> None:
    production = {"environment": "production", "database_url": "sqlite+aiosqlite:///:memory:"}
    async with app_client(console_app(**production)) as client:
        assert (await client.get("/console/login")).status_code == 404
        assert (await client.get("/console")).status_code == 404
    enabled = console_app(**production, console_enabled=True)
    async with app_client(enabled, base_url="https://ops.example.com") as client:
        assert (await client.get("/console")).status_code == 303
        await sign_in(client)
        assert (await client.get("/console")).status_code == 200


async def test_the_console_stays_out_of_the_openapi_document() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/console")]


async def test_every_action_is_logged_with_the_operator_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="omnistack.console")
    async with app_client(console_app(), base_url=LOCAL) as client:
        await sign_in(client, "alice@example.com")
        await client.post("/console/login", data={"token": "forged"})
    records = [r for r in caplog.records if r.name == "omnistack.console"]
    assert [(r.console_action, r.console_outcome) for r in records] == [  # type: ignore[attr-defined]
        ("login", "ok"),
        ("login", "refused"),
    ]
    assert records[0].console_operator == "a***@example.com"  # type: ignore[attr-defined]
    assert "alice" not in caplog.text


async def test_assets_are_served_by_the_library_and_nothing_else_is() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        css = await client.get("/console/static/console.css")
        js = await client.get("/console/static/console.js")
        other = await client.get("/console/static/__init__.py")
        login = await client.get("/console/login")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200
    assert other.status_code == 404
    # Every asset the page names is the library's own: nothing from another origin.
    assert not re.search(r'(src|href)="(https?:)?//', login.text)


def test_console_link_prints_a_link_the_service_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("ENVIRONMENT", "test")
    assert main(["console-link", "--operator", "bob", "--url", "https://ops.example.com/"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://ops.example.com/console/login?token=")
    token = httpx.URL(link).params["token"]

    async def use() -> int:
        async with app_client(console_app(), base_url=LOCAL) as client:
            return (await client.post("/console/login", data={"token": token})).status_code

    import asyncio  # noqa: PLC0415

    assert asyncio.run(use()) == 303


def test_console_link_without_a_secret_key_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    assert main(["console-link"]) == 1
    assert "SECRET_KEY" in capsys.readouterr().err


def test_audit_masks_personal_values() -> None:
    from omnistack_core.console import mask_value  # noqa: PLC0415

    masked = mask_value(
        {"email": "a@b.co", "user_id": 7, "note": "write to bob@example.com", "items": ["x@y.io"]}
    )
    assert masked == {
        "email": "***",
        "user_id": 7,
        "note": "write to b***@example.com",
        "items": ["x***@y.io"],
    }
    assert json.dumps(masked)


async def test_a_section_whose_module_is_not_installed_is_404_to_operators_only() -> None:
    async with app_client(console_app(), base_url=LOCAL) as client:
        assert (await client.get("/console/billing")).status_code == 303  # strangers: log in
        await sign_in(client)
        missing = await client.get("/console/billing")
        overview = await client.get("/console")
    assert missing.status_code == 404
    assert "does not install the billing module" in missing.text
    assert 'href="/console/billing"' not in overview.text  # and the navigation leaves it out


async def test_readiness_is_sampled_in_the_background_for_the_overview() -> None:
    app = console_app(console_sample_seconds=0.02)
    async with app_client(app, base_url=LOCAL) as client:
        state = ConsoleModule.of(app)
        for _ in range(500):
            if len(state.history) >= 2:
                break
            await asyncio.sleep(0.02)
        await sign_in(client)
        page = await client.get("/console")
    assert len(state.history) >= 3  # two in the background, one for the page
    assert {sample.readiness for sample in state.history} == {"ok"}
    assert page.text.count("<td>ok</td>") >= 3
