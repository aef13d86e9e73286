"""The documentation site builds cleanly and names only commands and variables that exist.

The pages are read as Markdown, not as the built site: what is checked is what a reader sees
in code, which is where commands and variables are named (inline code and fenced blocks).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omnistack_core.cli import _parser
from omnistack_core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))

# Modules whose settings classes declare variables of their own; each needs its extra.
SETTINGS_MODULES = {
    "omnistack_core.auth": "AuthSettings",
    "omnistack_core.jobs": "JobsSettings",
    "omnistack_core.email": "EmailSettings",
    "omnistack_core.billing": "BillingSettings",
    "omnistack_core.ai": "AISettings",
}

# Upper-case names the pages may show in code that are not settings, each with where it is
# read. test_every_other_name_in_the_docs_exists_in_the_repository holds each to a real use,
# so this list cannot hide an invented variable.
OTHER_NAMES = {
    # Read by the library outside the settings classes.
    "PROMETHEUS_MULTIPROC_DIR": "prometheus-client's multiprocess mode",
    "SENTRY_RELEASE": "the Sentry release",
    "GIT_SHA": "the Sentry release; the generated image's build argument",
    "RAILWAY_GIT_COMMIT_SHA": "the Sentry release on Railway",
    "RENDER_GIT_COMMIT": "the Sentry release on Render",
    "FLY_IMAGE_REF": "the Sentry release on Fly.io",
    "OMNISTACK_TEST_POSTGRES_URL": "the pytest plugin",
    "OMNISTACK_TEST_REDIS_URL": "the pytest plugin",
    "OMNISTACK_REQUIRE_SERVICES": "the pytest plugin",
    # Read by the generated service's files.
    "SHUTDOWN_GRACE_SECONDS": "the generated image's command",
    "POSTGRES_PASSWORD": "the generated docker-compose.yml",
    "SYSTEM_PROMPT": "the generated app/api/v1/chat.py",
    # Secrets of the generated deploy workflow.
    "STAGING_URL": "deploy.yml",
    "PRODUCTION_URL": "deploy.yml",
    "RAILWAY_TOKEN": "deploy.yml",
    "RENDER_API_KEY": "deploy.yml",
    "RENDER_STAGING_SERVICE_ID": "deploy.yml",
    "RENDER_PRODUCTION_SERVICE_ID": "deploy.yml",
    "FLY_API_TOKEN": "deploy.yml",
    "SENTRY_AUTH_TOKEN": "deploy.yml",
    "SENTRY_ORG": "deploy.yml",
    "SENTRY_PROJECT": "deploy.yml",
    "SLACK_WEBHOOK_URL": "deploy.yml",
    # A shell variable of the examples (TOKEN=$(omnistack auth dev-token ...)).
    "TOKEN": "the generated README's examples",
    # A value of a platform setting, not a variable.
    "ON_FAILURE": "the restart policy in the generated .railway/railway.py",
}
# Where OTHER_NAMES must be found in use.
SOURCES = ("omnistack_core", "template")
# The prefix the existing-app guide installs the modules under: OMNISTACK_ + a setting's name.
MODULE_PREFIX = "OMNISTACK_"

# Inline code, and the fences of a block (possibly indented inside a list item).
INLINE_CODE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
FENCE = re.compile(
    r"^(?P<indent>[ ]*)(?P<fence>`{3,})[^\n]*\n(?P<body>.*?)^(?P=indent)(?P=fence)[ ]*$",
    re.M | re.S,
)
# `omnistack` as a command: not omnistack_core, omnistack-core, omnistack:queue or a URL path.
COMMAND = re.compile(r"(?:^|(?<=[\s(]))omnistack[ \t]+(?P<rest>[^\n]+)")
COMMAND_END = {"&&", "||", "|", ";", ">", "2>", ")", "\\"}
NEGATIVE_NUMBER = re.compile(r"-\d+")
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*|<[^>]*>?")
# A variable: NAME=value anywhere in a block or a span, a whole span that is a NAME_WITH_PARTS,
# a YAML key `key: NAME` (Render), or an indented `NAME_WITH_PARTS: value` (Compose, YAML).
ASSIGNMENT = re.compile(r"(?<![\w$.\-/])(?P<name>[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)=")
WHOLE_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
YAML_KEY = re.compile(
    r"^\s*(?:-\s*)?key:\s*(?P<name>[A-Z][A-Z0-9_]*)\s*$"
    r"|^\s+(?P<key>[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+):\s",
    re.M,
)


def code_in(text: str) -> tuple[list[str], list[str]]:
    """The fenced blocks of a page, and its inline code spans outside them."""
    blocks = [textwrap.dedent(match["body"]) for match in FENCE.finditer(text)]
    prose = FENCE.sub("", text)
    spans = [match.group(2).strip() for match in INLINE_CODE.finditer(prose)]
    return blocks, spans


def all_code() -> list[tuple[Path, list[str], list[str]]]:
    return [(page, *code_in(page.read_text(encoding="utf-8"))) for page in PAGES]


# Building the site ----------------------------------------------------------------------------


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    if not all(importlib.util.find_spec(name) for name in ("mkdocs", "mkdocstrings")):
        reason = "mkdocs is not installed: `uv sync --all-extras` brings the docs group (in dev)"
        if os.environ.get("OMNISTACK_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    # A process of its own: mkdocs' own deprecation warnings are not this suite's to turn
    # into errors, and --strict already fails the build on every warning mkdocs reports.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "api" / "omnistack_core" / "index.html").is_file()


def test_every_page_is_in_the_navigation() -> None:
    navigation = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [page for page in PAGES if str(page.relative_to(DOCS)) not in navigation]

    assert not missing


def test_every_python_block_compiles() -> None:
    failures = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if not text[match.end("fence") :].startswith("python"):
                continue
            try:
                compile(textwrap.dedent(match["body"]), str(page), "exec")
            except SyntaxError as exc:
                failures.append(f"{page.relative_to(ROOT)}: {exc}")

    assert not failures


# Commands ------------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def command_problem(tokens: list[str]) -> str | None:
    """Why ``omnistack <tokens>`` is not a command of the parser, or None when it is."""
    parser = _parser()
    for raw in tokens:
        if raw in COMMAND_END or raw.startswith("#"):
            break
        # A synopsis marks optional parts with brackets: `[--lock-timeout 300]`.
        token = raw.strip("[]")
        if not token or NEGATIVE_NUMBER.fullmatch(token):
            continue  # `omnistack db downgrade -1`: a revision, not an option
        if token == "..." or PLACEHOLDER.fullmatch(token):
            break  # REV, JOB_ID, COMMAND: what the reader fills in
        if token.startswith("-"):
            flag = token.split("=", 1)[0]
            if flag not in parser._option_string_actions:
                return f"{parser.prog} has no option {flag}"
            continue
        choices = subcommands(parser)
        if choices is None:
            continue  # an argument or an option's value
        names = token.split("|")  # `omnistack billing sync|replay` names both
        unknown = [name for name in names if name not in choices]
        if unknown:
            return f"{parser.prog} has no command {', '.join(unknown)}"
        if len(names) > 1:
            break
        parser = choices[token]
    return None


def command_mentions() -> list[tuple[Path, str]]:
    mentions = []
    for page, blocks, spans in all_code():
        for code in [*blocks, *spans]:
            mentions += [(page, match["rest"]) for match in COMMAND.finditer(code)]
    return mentions


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> set[str]:
    choices = subcommands(parser)
    if choices is None:
        return {" ".join(path)}
    return {leaf for name, sub in choices.items() for leaf in leaf_commands(sub, (*path, name))}


def test_every_omnistack_command_in_the_docs_exists() -> None:
    mentions = command_mentions()
    problems = [
        f"{page.relative_to(ROOT)}: omnistack {rest}: {problem}"
        for page, rest in mentions
        if (problem := command_problem(rest.split()))
    ]

    assert len(mentions) > 50, "the pages name commands; the extraction found almost none"
    assert not problems


def test_the_cli_reference_describes_every_command() -> None:
    reference = DOCS / "reference" / "cli.md"
    described = {
        " ".join(token for token in rest.split() if not token.startswith(("-", "[")))
        for page, rest in command_mentions()
        if page == reference
    }
    missing = [
        leaf
        for leaf in sorted(leaf_commands(_parser()))
        if not any(text.startswith(leaf) for text in described)
    ]

    assert not missing


def test_a_command_the_parser_lacks_is_caught() -> None:
    assert command_problem(["db", "lint", "--rules"]) is None
    assert command_problem(["billing", "sync|replay"]) is None
    assert command_problem(["jobs", "retry", "JOB_ID"]) is None
    assert command_problem(["db", "downgrade", "-1"]) is None
    assert command_problem(["db", "upgrade", "[--lock-timeout", "300]"]) is None
    assert command_problem(["db", "migrate"]) is not None
    assert command_problem(["dev", "--port", "9000"]) is not None
    assert command_problem(["billing", "sync|refund"]) is not None


# Variables -----------------------------------------------------------------------------------


def setting_names() -> set[str]:
    classes: list[type[Settings]] = [Settings]
    for module, name in SETTINGS_MODULES.items():
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except ImportError as exc:
            pytest.skip(f"the module settings need every extra: {exc}")
    return {field.upper() for cls in classes for field in cls.model_fields}


def library_constants() -> set[str]:
    """Module-level upper-case names of the library (API_PREFIX, DEFAULT_PRICES...)."""
    defined = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)\s*(?::[^=\n]*)?=", re.M)
    return {
        match["name"]
        for path in (ROOT / "omnistack_core").rglob("*.py")
        for match in defined.finditer(path.read_text(encoding="utf-8"))
    }


def variables_named(blocks: list[str], spans: list[str]) -> set[str]:
    names = set()
    for code in [*blocks, *spans]:
        names |= {match["name"] for match in ASSIGNMENT.finditer(code)}
    for block in blocks:
        names |= {match["name"] or match["key"] for match in YAML_KEY.finditer(block)}
    names |= {span for span in spans if WHOLE_NAME.fullmatch(span)}
    return names


def test_every_environment_variable_in_the_docs_is_a_setting_or_a_known_name() -> None:
    settings = setting_names()
    known = settings | OTHER_NAMES.keys() | library_constants()
    unknown = sorted(
        f"{page.relative_to(ROOT)}: {name}"
        for page, blocks, spans in all_code()
        for name in variables_named(blocks, spans)
        if name not in known and name.removeprefix(MODULE_PREFIX) not in settings
    )

    assert not unknown


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    missing = sorted(name for name in setting_names() if f"`{name}`" not in reference)

    assert not missing


def test_every_other_name_in_the_docs_exists_in_the_repository() -> None:
    sources = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for directory in SOURCES
        for path in (ROOT / directory).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    missing = sorted(name for name in OTHER_NAMES if not re.search(rf"\b{name}\b", sources))

    assert not missing


def test_an_invented_variable_is_caught() -> None:
    blocks, spans = code_in(
        "Set `DB_POOL_MAXIMUM` and `PORT=8080`.\n\n```bash\nFOO_BAR=1 uv run app\n```\n"
    )

    assert variables_named(blocks, spans) == {"DB_POOL_MAXIMUM", "PORT", "FOO_BAR"}
    assert "DB_POOL_MAXIMUM" not in setting_names()
