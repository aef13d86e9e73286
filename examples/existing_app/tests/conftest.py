"""Each test runs the Notes app on a database its own Alembic migrated, once per run.

The database is one of its own on the test server, not the shared ``postgres_url``: other
suites create the modules' tables there with ``create_all``, and the modules' branches, run
by the app's Alembic, create them here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from examples.existing_app.tests.notes_app import Notes, alembic, environment, running
from omnistack_core.auth import AuthSettings
from omnistack_core.billing import BillingSettings
from omnistack_core.testing import LocalStripe, create_test_database, drop_test_database
from omnistack_core.testing.issuer import LocalIssuer


@pytest.fixture(autouse=True)
def no_module_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the modules' prefixed variables from the developer's shell."""
    for settings_class in (AuthSettings, BillingSettings):
        for field in settings_class.model_fields:
            monkeypatch.delenv(f"OMNISTACK_{field.upper()}", raising=False)


@pytest.fixture(scope="session")
def notes_database(postgres_url: str) -> Iterator[str]:
    """A database of the app's, migrated to every head with its own Alembic."""
    url = create_test_database(postgres_url)
    migrated = alembic(url, "upgrade", "heads")
    assert migrated.returncode == 0, migrated.stderr
    yield url
    drop_test_database(postgres_url, url)


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch,
    notes_database: str,
    local_issuer: LocalIssuer,
    local_stripe: LocalStripe,
) -> None:
    """The environment a deploy gives the app, pointing at the local issuer and Stripe."""
    price = local_stripe.add_price(lookup_key="pro-monthly", product_name="Notes Pro")
    for name, value in environment(notes_database, local_issuer, local_stripe, price).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def notes(
    configured: None, local_issuer: LocalIssuer, local_stripe: LocalStripe
) -> AsyncIterator[Notes]:
    """The app, started, with a client."""
    async with running(local_issuer, local_stripe) as started:
        yield started
