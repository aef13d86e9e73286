"""What the app takes from OmniStack: the modules, shared by the app and its migrations."""

from typing import Any

from omnistack_core import Module
from omnistack_core.auth import AuthModule
from omnistack_core.billing import BillingModule


def omnistack_modules() -> list[Module[Any]]:
    """Sign-in and billing, in start-up order (billing bills the signed-in user)."""
    # The app's own `users` table keeps its name: the auth module records users in another.
    return [AuthModule(users_table="omnistack_users"), BillingModule()]
