"""The zero-downtime migration linter: ``omnistack db lint``.

It reads the SQL Alembic would run for the pending revisions and flags statements that lock
busy tables or break the code still running during a deploy, each with its rule, file and
line, why it is unsafe and the safe pattern. A reviewed exception is a comment in the
revision, ``# omnistack-lint: allow <rule-id> -- why it is fine here``, which silences that
rule in that revision only. Needs the ``migrations`` extra (Alembic).
"""

from omnistack_core.db.lint.checks import Finding
from omnistack_core.db.lint.linter import DEFAULT_LARGE_TABLE_ROWS, lint_migrations
from omnistack_core.db.lint.report import LintReport, render_json, render_text
from omnistack_core.db.lint.rules import RULES, Rule

__all__ = [
    "DEFAULT_LARGE_TABLE_ROWS",
    "RULES",
    "Finding",
    "LintReport",
    "Rule",
    "lint_migrations",
    "render_json",
    "render_text",
]
