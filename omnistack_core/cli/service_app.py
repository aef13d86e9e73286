"""Finding the service's app: ``--app``, else ``[tool.omnistack] app`` in ``pyproject.toml``.

The commands that judge or start the service (``check-config``, ``env``, ``check-platform``,
``dev``, ``billing``) build its app exactly as the server does, by importing it, so what they
report is what a start would do. A generated service names its app in its pyproject::

    [tool.omnistack]
    app = "app.main:app"
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dotenv import dotenv_values

from omnistack_core.errors import ConfigurationError, MissingDependencyError
from omnistack_core.startup_errors import OutputFormat, report

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_APP = "app.main:app"
PYPROJECT = Path("pyproject.toml")


class AppNotFoundError(Exception):
    """The app spec cannot be imported, or does not name a FastAPI app."""


def add_app_option(parser: argparse.ArgumentParser) -> None:
    """``--app module:attribute``."""
    parser.add_argument(
        "--app",
        help="the service's app (default: [tool.omnistack] app in pyproject.toml, "
        f"else {DEFAULT_APP})",
    )


def add_env_file_option(parser: argparse.ArgumentParser) -> None:
    """``--env-file``: variables added to the environment, as a platform would set them."""
    parser.add_argument(
        "--env-file",
        default="",
        help="a dotenv file whose variables are set before the app is built (the environment "
        "wins); .env is read as at start-up either way",
    )


def configured_app(arguments: argparse.Namespace) -> str | None:
    """The app spec ``--app`` gives, else the pyproject's; None when neither names one."""
    spec: str | None = getattr(arguments, "app", None)
    if spec:
        return spec
    if PYPROJECT.is_file():
        import tomllib  # noqa: PLC0415 - an image holds no pyproject: its start skips the import

        table = tomllib.loads(PYPROJECT.read_text()).get("tool", {}).get("omnistack", {})
        configured = table.get("app")
        if isinstance(configured, str) and configured:
            return configured
    return None


def app_spec(arguments: argparse.Namespace) -> str:
    """The app spec to load: :func:`configured_app`, else ``app.main:app``."""
    return configured_app(arguments) or DEFAULT_APP


def apply_env_file(arguments: argparse.Namespace) -> None:
    """Set the ``--env-file`` variables the environment does not set already."""
    path = getattr(arguments, "env_file", "")
    if not path:
        return
    if not Path(path).is_file():
        raise AppNotFoundError(f"no env file {path}")
    from os import environ  # noqa: PLC0415 - the one place the CLI writes the environment

    for name, value in dotenv_values(path).items():
        if value is not None:
            environ.setdefault(name, value)


def load_app(spec: str) -> FastAPI:
    """Build the app at ``spec`` by importing it afresh, as ``uvicorn spec`` would.

    Raises:
        ConfigurationError: The settings cannot start the app (raised by ``create_app``).
        MissingDependencyError: An extra the app needs is not installed.
        AppNotFoundError: ``spec`` cannot be imported or names no FastAPI app.
    """
    from fastapi import FastAPI  # noqa: PLC0415 - only the commands that build the app

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AppNotFoundError(f"{spec!r} is not module:attribute, e.g. {DEFAULT_APP}")
    # As uvicorn does: the service's package is found from the directory it runs in.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    # Afresh: a module imported before (a test calling the CLI twice) would not be rebuilt.
    sys.modules.pop(module_name, None)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppNotFoundError(
                f"cannot import {module_name} (run from the service's folder)"
            ) from None
        raise
    app = getattr(module, attribute, None)
    if not isinstance(app, FastAPI):
        raise AppNotFoundError(f"{spec} is not a FastAPI app")
    return app


def load_app_or_report(spec: str) -> FastAPI | None:
    """The app at ``spec``, built by :func:`load_app`; None once why it cannot be is printed.

    A bad configuration is reported as the start-up would report it, one block listing every
    problem; an app that cannot be found, as one line.
    """
    try:
        return load_app(spec)
    except (ConfigurationError, MissingDependencyError) as exc:
        report(exc, OutputFormat.from_environment())
    except AppNotFoundError as exc:
        print(f"error: cannot load the app {spec}: {exc}", file=sys.stderr)
    return None
