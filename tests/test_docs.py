"""The documentation site builds cleanly and names only commands and variables that exist.

The pages are read as Markdown, not as the built site: what is checked is what a reader sees
in code, which is where commands and variables are named (inline code and fenced blocks).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omnistack_core import ConfigurationError, load_settings, settings_class_for
from omnistack_core.cli import _parser
from omnistack_core.module_settings import ModuleSettings
from omnistack_core.settings import Settings
from omnistack_core.variables import Variable, variables_of

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
    "omnistack_core.console": "ConsoleSettings",
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
    "OMNISTACK_ENV_FILE": "load_settings, in place of .env; the generated tests set it empty",
    # Read by the generated service's files.
    "POSTGRES_PASSWORD": "the generated docker-compose.yml",
    "SYSTEM_PROMPT": "the generated app/api/v1/chat.py",
    # Secrets of the generated deploy workflow.
    "STAGING_URL": "deploy.yml",
    "PRODUCTION_URL": "deploy.yml",
    "RAILWAY_TOKEN": "deploy.yml",
    "RENDER_API_KEY": "deploy.yml",
    "RENDER_STAGING_SERVICE_ID": "deploy.yml",
    "RENDER_PRODUCTION_SERVICE_ID": "deploy.yml",
    "RENDER_STAGING_WORKER_SERVICE_ID": "deploy.yml",
    "RENDER_PRODUCTION_WORKER_SERVICE_ID": "deploy.yml",
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
# The prefix the pages use in examples of install(app, modules, env_prefix=...).
ENV_PREFIX = "OMNISTACK_"
# Where OTHER_NAMES must be found in use.
SOURCES = ("omnistack_core", "template")

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
VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
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


def settings_classes() -> dict[str, type[ModuleSettings]]:
    """The core's and every module's settings class, by class name."""
    classes: dict[str, type[ModuleSettings]] = {"Settings": Settings}
    for module, name in SETTINGS_MODULES.items():
        try:
            classes[name] = getattr(importlib.import_module(module), name)
        except ImportError as exc:
            pytest.skip(f"the module settings need every extra: {exc}")
    return classes


def setting_names() -> set[str]:
    return {field.upper() for cls in settings_classes().values() for field in cls.model_fields}


def every_variable() -> list[Variable]:
    """What ``omnistack env`` lists for a service installing every module."""
    try:
        from omnistack_core.ai import AIModule  # noqa: PLC0415 - each needs its extra
        from omnistack_core.auth import AuthModule  # noqa: PLC0415
        from omnistack_core.billing import BillingModule  # noqa: PLC0415
        from omnistack_core.console import ConsoleModule  # noqa: PLC0415
        from omnistack_core.email import EmailModule  # noqa: PLC0415
        from omnistack_core.jobs import JobsModule  # noqa: PLC0415
    except ImportError as exc:
        pytest.skip(f"the modules need every extra: {exc}")
    return variables_of(
        [AuthModule(), JobsModule(), EmailModule(), BillingModule(), AIModule(), ConsoleModule()]
    )


def library_constants() -> set[str]:
    """Module-level upper-case names of the library (API_PREFIX, DEFAULT_PRICES...)."""
    defined = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)\s*(?::[^=\n]*)?=", re.M)
    return {
        match["name"]
        for path in (ROOT / "omnistack_core").rglob("*.py")
        for match in defined.finditer(path.read_text(encoding="utf-8"))
    }


def example_settings() -> set[str]:
    """Variables that settings classes written out in the pages' Python examples declare."""
    names = set()
    for _, blocks, _ in all_code():
        for block in blocks:
            try:
                tree = ast.parse(block)
            except SyntaxError:
                continue  # not Python; test_every_python_block_compiles covers the ones that are
            for node in ast.walk(tree):
                bases = {getattr(base, "id", "") for base in getattr(node, "bases", [])}
                if isinstance(node, ast.ClassDef) and bases & {"ModuleSettings", "Settings"}:
                    names |= {
                        item.target.id.upper()
                        for item in node.body
                        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    }
    return names


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
    # A setting read under the prefix the pages give install(env_prefix=...) as the example.
    prefixed = {f"{ENV_PREFIX}{name}" for name in settings}
    known = settings | prefixed | example_settings() | OTHER_NAMES.keys() | library_constants()
    unknown = sorted(
        f"{page.relative_to(ROOT)}: {name}"
        for page, blocks, spans in all_code()
        for name in variables_named(blocks, spans)
        if name not in known
    )

    assert not unknown


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of the Markdown tables in ``text`` (header and rule left out)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append(cells)
    return [row for row in rows if row[0].startswith("`")]


def names_in(cell: str) -> list[str]:
    """The variables a table's first cell names (`A`, `B` or `A` / `B`)."""
    return [span for span in re.findall(r"`([^`]+)`", cell) if VARIABLE.fullmatch(span)]


def reference_sections() -> dict[str, str]:
    """The configuration reference's sections of settings classes, by the class's module."""
    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    classes = settings_classes()
    sections = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        heading = section.splitlines()[0]
        owner = re.search(r"\(`(\w+)`\)", heading)
        if owner is not None:
            sections[classes[owner.group(1)].module or "core"] = section
    return sections


def reference_rows() -> dict[str, tuple[str, list[str]]]:
    """Each variable the reference's settings tables name: its section's module and its row."""
    rows: dict[str, tuple[str, list[str]]] = {}
    for module, section in reference_sections().items():
        for row in table_rows(section):
            for name in names_in(row[0]):
                assert name not in rows, f"{name} has two rows"
                rows[name] = (module, row)
    return rows


def test_the_configuration_reference_lists_exactly_the_variables_the_settings_declare() -> None:
    variables = {variable.name: variable.module for variable in every_variable()}
    listed = {name: module for name, (module, _) in reference_rows().items()}

    assert sorted(set(variables) - set(listed)) == []  # every variable is listed
    assert sorted(set(listed) - set(variables)) == []  # and nothing that is none
    assert listed == variables  # each under the class that declares it first


def test_the_configuration_reference_marks_exactly_the_secrets_secret() -> None:
    rows = reference_rows()
    wrong = [
        variable.name
        for variable in every_variable()
        if variable.name in rows  # a missing one fails the test above
        and ("*secret*" in rows[variable.name][1][-1]) is not variable.secret
    ]

    assert not wrong


def test_the_configuration_reference_says_when_each_variable_is_required() -> None:
    rows = reference_rows()
    wrong = []
    for variable in every_variable():
        if variable.name not in rows:
            continue  # a missing one fails the test above
        required = rows[variable.name][1][2].replace("`", "")
        expected = [requirement.describe() for requirement in variable.requirements]
        if (required == "—") != (not expected) or not all(text in required for text in expected):
            wrong.append(f"{variable.name}: {required!r}, declared {expected}")

    assert not wrong


def test_the_configuration_reference_names_what_a_module_reads_of_the_cores() -> None:
    sections = reference_sections()
    shared = set(Settings.model_fields) - set(ModuleSettings.model_fields)
    unsaid = [
        f"{cls.module}: {field.upper()}"
        for name, cls in settings_classes().items()
        if name != "Settings"
        for field in sorted(shared & set(cls.model_fields))
        if f"Also reads `{field.upper()}`" not in sections[cls.module]
    ]

    assert not unsaid


def test_the_readme_configuration_table_lists_exactly_the_variables() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    listed = [name for row in table_rows(section) for name in names_in(row[0])]
    variables = {variable.name for variable in every_variable()}

    assert len(listed) == len(set(listed))
    assert set(listed) - OTHER_NAMES.keys() == variables


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


# The troubleshooting page ----------------------------------------------------------------------


def reported_problems() -> set[str]:
    """Every problem line a start prints for a set of bad configurations of every module."""
    from omnistack_core.ai import AIModule  # noqa: PLC0415 - each needs its extra
    from omnistack_core.auth import AuthModule  # noqa: PLC0415
    from omnistack_core.billing import BillingModule  # noqa: PLC0415
    from omnistack_core.email import EmailModule  # noqa: PLC0415
    from omnistack_core.jobs import JobsModule  # noqa: PLC0415

    every = settings_class_for(
        [AuthModule(), JobsModule(), EmailModule(), BillingModule(), AIModule()], base=Settings
    )
    bad = [
        {"environment": "production"},
        {
            "environment": "production",
            "secret_key": "short",
            "database_url": "mysql://db/app",
            "redis_url": "http://redis",
            "auth_provider": "dev",
            "email_provider": "resend",
            "ai_default_model": "openai:gpt-4o-mini",
        },
        {
            "environment": "production",
            "auth_provider": "supabase",
            "supabase_project_url": "http://abc.supabase.co",
            "email_provider": "smtp",
            "database_url": "postgres://app@db/app?channel_binding=require",
        },
        {
            "environment": "production",
            "auth_provider": "clerk",
            "database_url": "postgres://a@b/c?x=1",
        },
        {"environment": "staging", "auth_provider": "supabase"},
    ]
    errors = []
    for values in bad:
        with pytest.raises(ConfigurationError) as refused:
            load_settings(every, env_file=None, **values)
        errors.append(refused.value)
    with pytest.raises(ConfigurationError) as refused:
        settings_class_for([BillingModule()], base=Settings)
    errors.append(refused.value)
    return {
        f"{problem.variable}: {problem.message}" for error in errors for problem in error.problems
    }


def test_the_troubleshooting_page_quotes_the_problems_a_start_reports() -> None:
    every_variable()  # skips without every extra
    page = (DOCS / "operations" / "troubleshooting.md").read_text(encoding="utf-8")
    section = page.split("## The service does not start", 1)[1].split("\n## ", 1)[0]
    blocks, _ = code_in(section)
    [example] = [json.loads(block) for block in blocks if block.startswith("{")]
    quoted = [re.findall(r"`([^`]+)`", row[0])[0] for row in table_rows(section)]
    quoted += [f"{problem['variable']}: {problem['message']}" for problem in example["problems"]]
    reported = reported_problems()
    unknown = [
        line
        for line in quoted
        if not any(problem.startswith(line.removesuffix("...").rstrip()) for problem in reported)
    ]

    assert len(quoted) > 15
    assert not unknown


# The Docker page -------------------------------------------------------------------------------


def test_the_docker_env_file_holds_exactly_what_production_needs_for_the_default_answers() -> None:
    every_variable()  # skips without every extra
    from omnistack_core.auth import AuthModule  # noqa: PLC0415 - needs its extra
    from omnistack_core.email import EmailModule  # noqa: PLC0415
    from omnistack_core.jobs import JobsModule  # noqa: PLC0415

    page = (DOCS / "deployment" / "docker.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- production-env -->\n```bash\n(.*?)```", page, re.S)
    assert match is not None, "docker.md has no production-env block"
    values = dict(line.split("=", 1) for line in match.group(1).splitlines())
    # The generated app's modules for the default answers, loaded as the image loads them.
    composed = settings_class_for([AuthModule(), EmailModule(), JobsModule()], base=Settings)

    def start(values: dict[str, str]) -> None:
        load_settings(composed, env_file=None, environment="production", **values)

    start({name.lower(): value for name, value in values.items()})
    needless = []
    for name in values:
        try:
            start({other.lower(): value for other, value in values.items() if other != name})
        except ConfigurationError:
            continue
        needless.append(name)

    assert not needless  # each one is required: without it, production refuses to start
