"""The README's auth example runs as written."""

from __future__ import annotations

import pytest

from omnistack_core.auth import mint_dev_token
from omnistack_core.testing import app_client
from tests.auth.auth_apps import bearer
from tests.test_readme import python_blocks


async def test_the_auth_example_serves_me_and_guards_the_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [example] = [
        block
        for block in python_blocks()
        if "AuthModule()" in block and "BillingModule" not in block
    ]
    namespace: dict[str, object] = {}
    # The example reads SECRET_KEY from the environment, as a service would.
    monkeypatch.setenv("SECRET_KEY", "r" * 40)
    exec(compile(example, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    user = mint_dev_token("r" * 40, "reader", email="r@example.com")
    admin = mint_dev_token("r" * 40, "boss", roles=["org:admin"])

    async with app_client(namespace["app"]) as client:
        me = await client.get("/api/v1/me", headers=bearer(user))
        refused = await client.get("/api/v1/admin/report", headers=bearer(user))
        report = await client.get("/api/v1/admin/report", headers=bearer(admin))

    assert me.json() == {"id": "reader", "email": "r@example.com"}
    assert refused.status_code == 403
    assert report.json() == {"for": "boss"}
