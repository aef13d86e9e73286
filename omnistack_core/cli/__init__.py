"""The ``omnistack`` command: one module per command group, each adding its commands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from omnistack_core import __version__
from omnistack_core.cli import auth, billing, config, console, db, dev, jobs, platform, serve


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``omnistack`` command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status.
    """
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return 2
    status: int = arguments.handler(arguments)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnistack", description="OmniStack service tools.")
    parser.add_argument("--version", action="version", version=f"omnistack-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (config, platform, auth, db, jobs, billing, console, dev, serve):
        group.add_commands(commands)
    return parser
