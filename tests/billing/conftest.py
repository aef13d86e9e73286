from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_billing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The billing module's own variables are unset too, whatever the shell exports."""
    from omnistack_core.billing import BillingSettings  # noqa: PLC0415 - with the billing extra

    for name in BillingSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
