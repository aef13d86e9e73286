"""``omnistack billing sync|replay``: repair billing state from Stripe."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from omnistack_core.cli.service_app import add_app_option, app_spec, load_app_or_report
from omnistack_core.installation import Installation


def add_commands(commands: Any) -> None:
    """Add ``billing sync|replay``."""
    billing = commands.add_parser("billing", help="billing repair: sync from Stripe, replay")
    billing_commands = billing.add_subparsers(
        dest="billing_command", metavar="COMMAND", required=True
    )
    sync = billing_commands.add_parser(
        "sync",
        help="fetch every customer's subscriptions from Stripe and correct stored state",
        description="Start the app, list each known customer's subscriptions at Stripe and "
        "replace stored rows that differ. Safe to run at any time.",
    )
    replay = billing_commands.add_parser(
        "replay",
        help="process again the stored Stripe events that failed",
        description="Start the app and run the events whose handling failed through the same "
        "path as the webhook, oldest first. Exit 1 when any fails again.",
    )
    replay.add_argument("--limit", type=int, default=100, help="events to replay at most (100)")
    for command in (sync, replay):
        add_app_option(command)
    sync.set_defaults(handler=_billing_sync)
    replay.set_defaults(handler=_billing_replay)


def _billing_sync(arguments: argparse.Namespace) -> int:
    from omnistack_core.billing import BillingModule  # noqa: PLC0415 - the billing extra

    async def sync(app: Any) -> int:
        outcome = await BillingModule.of(app).sync()
        print(
            f"checked {outcome.subscriptions} subscriptions of {outcome.customers} customers; "
            f"corrected {outcome.corrected}"
        )
        return 0

    return _with_billing(app_spec(arguments), sync)


def _billing_replay(arguments: argparse.Namespace) -> int:
    from omnistack_core.billing import BillingModule  # noqa: PLC0415 - the billing extra

    async def replay(app: Any) -> int:
        webhooks = BillingModule.webhooks(app)
        processed, failed = await webhooks.replay_failed(limit=arguments.limit)
        print(f"replayed {processed + failed} events: {processed} processed, {failed} failed")
        return 1 if failed else 0

    return _with_billing(app_spec(arguments), replay)


def _with_billing(spec: str, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``work`` with the app at ``spec`` started, as its billing module sees it."""
    app = load_app_or_report(spec)
    if app is None:
        return 1
    if not Installation.of(app).installed("billing"):
        print(f"{spec} has no BillingModule", file=sys.stderr)
        return 1

    async def run() -> int:
        async with app.router.lifespan_context(app):
            return await work(app)

    return asyncio.run(run())
