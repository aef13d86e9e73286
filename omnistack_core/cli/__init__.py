"""The ``omnistack`` command: one module per command group, each adding its commands.

A run imports only the module of the command it runs (all of them for ``--help``): the
groups import what their commands need (SQLAlchemy and Alembic for ``db``, the app for most),
and ``omnistack serve``, the start command of every container, should load no more than
serving needs.
"""

from __future__ import annotations

import argparse
import gc
import importlib
from collections.abc import Sequence

from omnistack_core import __version__

GROUPS = ("config", "platform", "auth", "db", "jobs", "billing", "console", "dev", "serve")
"""The modules of this package that add commands, in the order ``--help`` lists them."""

COMMANDS = {
    "check-config": "config",
    "env": "config",
    "check-platform": "platform",
    "auth": "auth",
    "db": "db",
    "worker-check": "jobs",
    "jobs": "jobs",
    "billing": "billing",
    "console-link": "console",
    "dev": "dev",
    "serve": "serve",
}
"""Each top-level command, and the group module that adds it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``omnistack`` command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status.
    """
    if argv is None:
        import sys  # noqa: PLC0415

        argv = sys.argv[1:]
    command = next((argument for argument in argv if not argument.startswith("-")), None)
    collecting = gc.isenabled()
    if command == "serve":
        # A start creates many objects that live as long as the process, and little garbage:
        # the collector's passes over them are a tenth of its CPU. serve turns it back on
        # once the app has started (or in its supervisor at once).
        gc.disable()
    try:
        parser = _parser(command)
        arguments = parser.parse_args(argv)
        if arguments.command is None:
            parser.print_help()
            return 2
        status: int = arguments.handler(arguments)
    finally:
        if collecting:
            gc.enable()
    return status


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s group alone when it is known, else with every group."""
    parser = argparse.ArgumentParser(prog="omnistack", description="OmniStack service tools.")
    parser.add_argument("--version", action="version", version=f"omnistack-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups = (COMMANDS[command],) if command in COMMANDS else GROUPS
    for group in groups:
        importlib.import_module(f"{__name__}.{group}").add_commands(commands)
    return parser
