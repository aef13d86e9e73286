"""Readiness on the app's own route: its database check beside the modules' checks."""

from __future__ import annotations

from examples.existing_app.tests.notes_app import Notes


async def test_readiness_reports_the_apps_and_the_modules_checks(notes: Notes) -> None:
    response = await notes.client.get("/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "auth_jwks"}
    assert body["checks"]["auth_jwks"]["status"] == "ok"


async def test_an_issuer_that_fails_degrades_readiness_without_failing_it(notes: Notes) -> None:
    notes.issuer.status = 503

    response = await notes.client.get("/ready")

    # The JWKS check is not critical: keys already fetched keep verifying tokens.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["auth_jwks"]["status"] == "degraded"
    assert "error" not in body["checks"]["auth_jwks"]  # for the log and operators only
    assert body["checks"]["database"]["status"] == "ok"
