"""The migration linter: one unsafe revision per rule, flagged at its line; the safe version of
each passes and really migrates PostgreSQL up, down and up again."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("alembic", reason="needs the migrations extra")

from omnistack_core import load_settings
from omnistack_core.cli import main
from omnistack_core.db.lint import RULES, lint_migrations
from omnistack_core.db.lint.sql import split_statements
from omnistack_core.db.migrations import upgrade
from omnistack_core.testing.migrations import (
    assert_migrations_lint_clean,
    assert_revisions_round_trip,
)
from tests.db.migration_project import write_project

# The models map accounts without "legacy", and no audit_old table: those two are the ones a
# revision may drop.
MODELS_ENV = """
import sqlalchemy as sa

from omnistack_core.db.migrations import run_alembic

metadata = sa.MetaData()
sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("plan", sa.Text),
)
sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer),
    sa.Column("total", sa.Integer),
)
run_alembic(metadata)
"""

BASE = """
revision = "0001_base"
down_revision = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("legacy", sa.Text),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer),
        sa.Column("total", sa.Integer),
    )
    op.create_table("audit_old", sa.Column("id", sa.Integer, primary_key=True))
    op.create_index("ix_orders_account_id", "orders", ["account_id"])
    op.execute(
        "INSERT INTO accounts (id, email, name, plan, legacy) "
        "VALUES (1, 'a@example.com', 'Ada', 'free', 'x'), (2, 'b@example.com', 'Bo', 'pro', 'y')"
    )
    op.execute("INSERT INTO orders (id, account_id, total) VALUES (1, 1, 10), (2, 2, 20)")


def downgrade():
    op.drop_table("audit_old")
    op.drop_table("orders")
    op.drop_table("accounts")
"""

CONCURRENT_INDEX = """
with op.get_context().autocommit_block():
    op.create_index("ix_orders_total", "orders", ["total"], postgresql_concurrently=True)
"""
DROP_CONCURRENT_INDEX = """
with op.get_context().autocommit_block():
    op.drop_index("ix_orders_total", table_name="orders", postgresql_concurrently=True)
"""


@dataclass(frozen=True)
class Case:
    """An unsafe upgrade (its flagged line marked ``# unsafe``) and the safe way to do it."""

    unsafe: str
    safe: str
    safe_downgrade: str
    unsafe_downgrade: str = 'op.execute("SELECT 1")'


CASES = {
    "add-column-not-null": Case(
        'op.add_column("accounts", sa.Column("tier", sa.Text, nullable=False))  # unsafe',
        'op.add_column("accounts", sa.Column("tier", sa.Text, nullable=False, '
        'server_default="free"))',
        'op.drop_column("accounts", "tier")',
    ),
    "set-not-null": Case(
        'op.alter_column("accounts", "email", nullable=False)  # unsafe',
        """
        op.create_check_constraint(
            "ck_accounts_email_present", "accounts", "email IS NOT NULL", postgresql_not_valid=True
        )
        with op.get_context().autocommit_block():
            op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_accounts_email_present")
        op.alter_column("accounts", "email", nullable=False)
        op.drop_constraint("ck_accounts_email_present", "accounts", type_="check")
        """,
        'op.alter_column("accounts", "email", nullable=True)',
    ),
    "drop-mapped-column": Case(
        'op.drop_column("accounts", "plan")  # unsafe',
        'op.drop_column("accounts", "legacy")',
        'op.add_column("accounts", sa.Column("legacy", sa.Text))',
    ),
    "drop-mapped-table": Case(
        'op.drop_table("orders")  # unsafe',
        'op.drop_table("audit_old")',
        'op.create_table("audit_old", sa.Column("id", sa.Integer, primary_key=True))',
    ),
    "rename-column": Case(
        'op.alter_column("accounts", "name", new_column_name="full_name")  # unsafe',
        """
        op.add_column("accounts", sa.Column("full_name", sa.Text))
        op.execute("UPDATE accounts SET full_name = name")
        """,
        'op.drop_column("accounts", "full_name")',
    ),
    "rename-table": Case(
        'op.rename_table("orders", "purchases")  # unsafe',
        'op.execute("CREATE VIEW purchases AS SELECT * FROM orders")',
        'op.execute("DROP VIEW purchases")',
    ),
    "change-column-type": Case(
        'op.alter_column("orders", "total", type_=sa.BigInteger)  # unsafe',
        """
        op.add_column("orders", sa.Column("total_big", sa.BigInteger))
        op.execute("UPDATE orders SET total_big = total")
        """,
        'op.drop_column("orders", "total_big")',
    ),
    "index-not-concurrent": Case(
        'op.create_index("ix_orders_total", "orders", ["total"])  # unsafe',
        CONCURRENT_INDEX,
        DROP_CONCURRENT_INDEX,
    ),
    "concurrent-in-transaction": Case(
        'op.create_index("ix_orders_total", "orders", ["total"], postgresql_concurrently=True)'
        "  # unsafe",
        CONCURRENT_INDEX,
        DROP_CONCURRENT_INDEX,
    ),
    "foreign-key-not-valid": Case(
        'op.create_foreign_key("fk_orders_account", "orders", "accounts", ["account_id"], ["id"])'
        "  # unsafe",
        """
        op.create_foreign_key(
            "fk_orders_account", "orders", "accounts", ["account_id"], ["id"],
            postgresql_not_valid=True,
        )
        with op.get_context().autocommit_block():
            op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_account")
        """,
        'op.drop_constraint("fk_orders_account", "orders", type_="foreignkey")',
    ),
    "check-not-valid": Case(
        'op.create_check_constraint("ck_orders_total", "orders", "total >= 0")  # unsafe',
        """
        op.create_check_constraint(
            "ck_orders_total", "orders", "total >= 0", postgresql_not_valid=True
        )
        with op.get_context().autocommit_block():
            op.execute("ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_total")
        """,
        'op.drop_constraint("ck_orders_total", "orders", type_="check")',
    ),
    "unique-without-index": Case(
        'op.create_unique_constraint("uq_accounts_email", "accounts", ["email"])  # unsafe',
        """
        with op.get_context().autocommit_block():
            op.create_index(
                "uq_accounts_email", "accounts", ["email"], unique=True,
                postgresql_concurrently=True,
            )
        op.execute(
            "ALTER TABLE accounts ADD CONSTRAINT uq_accounts_email "
            "UNIQUE USING INDEX uq_accounts_email"
        )
        """,
        'op.drop_constraint("uq_accounts_email", "accounts", type_="unique")',
    ),
    "volatile-default": Case(
        'op.add_column("orders", sa.Column("token", sa.Uuid, '
        'server_default=sa.text("gen_random_uuid()")))'
        "  # unsafe",
        """
        op.add_column("orders", sa.Column("token", sa.Uuid))
        op.alter_column("orders", "token", server_default=sa.text("gen_random_uuid()"))
        """,
        'op.drop_column("orders", "token")',
    ),
    "missing-downgrade": Case(
        'op.add_column("orders", sa.Column("note", sa.Text))',
        'op.add_column("orders", sa.Column("note", sa.Text))',
        'op.drop_column("orders", "note")',
        unsafe_downgrade="pass",
    ),
}


def revision(
    upgrade_body: str,
    downgrade_body: str,
    *,
    name: str = "0002_case",
    down: str = "0001_base",
    downgrade_marker: str = "",
) -> str:
    def body(text: str) -> str:
        return textwrap.indent(textwrap.dedent(text).strip(), "    ")

    return (
        f'revision = "{name}"\ndown_revision = "{down}"\n\n\n'
        f"def upgrade():\n{body(upgrade_body)}\n\n\n"
        f"def downgrade():{downgrade_marker}\n{body(downgrade_body)}\n"
    )


def marked_line(config: Path, name: str = "0002_case.py") -> int:
    lines = (config.parent / "migrations" / "versions" / name).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if "# unsafe" in line)


def case_project(directory: Path, rule: str, *, safe: bool) -> Path:
    case = CASES[rule]
    if safe:
        second = revision(case.safe, case.safe_downgrade)
    else:
        marker = "  # unsafe" if rule == "missing-downgrade" else ""
        second = revision(case.unsafe, case.unsafe_downgrade, downgrade_marker=marker)
    return write_project(directory, {"0001_base.py": BASE, "0002_case.py": second}, env=MODELS_ENV)


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == set(RULES) - {"unknown-rule"}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_an_unsafe_revision_is_flagged_with_its_rule_and_line(tmp_path: Path, rule: str) -> None:
    config = case_project(tmp_path, rule, safe=False)

    report = lint_migrations(config, since="base")

    found = [(f.rule, f.revision, f.line) for f in report.findings]
    assert found == [(rule, "0002_case", marked_line(config))]
    assert report.findings[0].path.endswith("0002_case.py")
    assert report.revisions == ("0001_base", "0002_case")


@pytest.mark.parametrize("rule", sorted(CASES))
def test_the_safe_version_passes_and_migrates_postgres_both_ways(
    tmp_path: Path, rule: str, empty_postgres_url: str
) -> None:
    config = case_project(tmp_path, rule, safe=True)

    report = assert_migrations_lint_clean(config)
    checked = assert_revisions_round_trip(empty_postgres_url, config)

    assert report.revisions == ("0001_base", "0002_case")
    assert checked == ["0001_base", "0002_case"]


FIVE_STEPS = {
    # 1. add the new column, nullable (the code of this release writes both columns)
    "0002_add_full_name.py": revision(
        'op.add_column("accounts", sa.Column("full_name", sa.Text))',
        'op.drop_column("accounts", "full_name")',
        name="0002_add_full_name",
    ),
    # 3. backfill the rows written before
    "0003_backfill.py": revision(
        'op.execute("UPDATE accounts SET full_name = name WHERE full_name IS NULL")',
        'op.execute("SELECT 1")  # the copy is harmless to keep',
        name="0003_backfill",
        down="0002_add_full_name",
    ),
    # make it NOT NULL without a long lock: a validated check first
    "0004_full_name_required.py": revision(
        """
        op.create_check_constraint(
            "ck_accounts_full_name", "accounts", "full_name IS NOT NULL", postgresql_not_valid=True
        )
        with op.get_context().autocommit_block():
            op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_accounts_full_name")
        op.alter_column("accounts", "full_name", nullable=False)
        op.drop_constraint("ck_accounts_full_name", "accounts", type_="check")
        """,
        'op.alter_column("accounts", "full_name", nullable=True)',
        name="0004_full_name_required",
        down="0003_backfill",
    ),
    # 5. drop the old column once no release reads it (the models no longer map it)
    "0005_drop_name.py": revision(
        'op.drop_column("accounts", "name")',
        """
        op.add_column("accounts", sa.Column("name", sa.Text))
        op.execute("UPDATE accounts SET name = full_name")
        """,
        name="0005_drop_name",
        down="0004_full_name_required",
    ),
}


def test_the_five_step_column_change_passes_and_round_trips(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    env = MODELS_ENV.replace('sa.Column("name", sa.Text)', 'sa.Column("full_name", sa.Text)')
    config = write_project(tmp_path, {"0001_base.py": BASE, **FIVE_STEPS}, env=env)

    report = assert_migrations_lint_clean(config)
    assert_revisions_round_trip(empty_postgres_url, config)

    assert len(report.revisions) == 5


def test_the_same_drop_is_flagged_while_the_models_still_map_the_column(tmp_path: Path) -> None:
    config = write_project(tmp_path, {"0001_base.py": BASE, **FIVE_STEPS}, env=MODELS_ENV)

    report = lint_migrations(config, since="base")

    assert [(f.rule, f.revision) for f in report.findings] == [
        ("drop-mapped-column", "0005_drop_name")
    ]


TWO_PROBLEMS = """
    op.create_index("ix_orders_total", "orders", ["total"])  # unsafe
    # omnistack-lint: allow index-not-concurrent -- orders is tiny in every environment
    op.create_check_constraint("ck_orders_total", "orders", "total >= 0")
"""


def test_an_allow_comment_silences_exactly_the_rule_it_names(tmp_path: Path) -> None:
    second = revision(TWO_PROBLEMS, 'op.execute("SELECT 1")')
    config = write_project(tmp_path, {"0001_base.py": BASE, "0002_case.py": second}, MODELS_ENV)

    report = lint_migrations(config, since="base")

    assert [f.rule for f in report.findings] == ["check-not-valid"]
    assert [(f.rule, f.line) for f in report.allowed] == [
        ("index-not-concurrent", marked_line(config))
    ]


def test_an_allow_comment_naming_no_rule_is_itself_a_finding(tmp_path: Path) -> None:
    body = TWO_PROBLEMS.replace("allow index-not-concurrent", "allow index-not-concurent")
    config = write_project(
        tmp_path,
        {"0001_base.py": BASE, "0002_case.py": revision(body, 'op.execute("SELECT 1")')},
        MODELS_ENV,
    )

    report = lint_migrations(config, since="base")

    assert [f.rule for f in report.findings] == [
        "index-not-concurrent",
        "unknown-rule",
        "check-not-valid",
    ]
    assert not report.allowed


def test_raw_sql_is_linted_statement_by_statement(tmp_path: Path) -> None:
    raw = (
        'op.execute("ALTER TABLE orders ADD COLUMN note text; '
        'CREATE INDEX ix_orders_note ON orders (note)")  # unsafe'
    )
    config = write_project(
        tmp_path,
        {"0001_base.py": BASE, "0002_case.py": revision(raw, 'op.execute("SELECT 1")')},
        MODELS_ENV,
    )

    report = lint_migrations(config, since="base")

    assert [(f.rule, f.line, f.statement) for f in report.findings] == [
        (
            "index-not-concurrent",
            marked_line(config),
            "CREATE INDEX ix_orders_note ON orders (note)",
        )
    ]


def test_since_lints_only_the_later_revisions(tmp_path: Path) -> None:
    config = case_project(tmp_path, "index-not-concurrent", safe=False)

    assert lint_migrations(config, since="0002_case").revisions == ()
    assert lint_migrations(config, since="0001_base").revisions == ("0002_case",)


def test_the_database_spares_findings_that_cannot_hurt(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    validated = revision(
        """
        op.create_check_constraint(
            "ck_accounts_email_present", "accounts", "email IS NOT NULL", postgresql_not_valid=True
        )
        with op.get_context().autocommit_block():
            op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_accounts_email_present")
        """,
        'op.drop_constraint("ck_accounts_email_present", "accounts", type_="check")',
        name="0002_check",
    )
    later = revision(
        """
        op.alter_column("accounts", "email", nullable=False)
        op.add_column(
            "orders", sa.Column("token", sa.Uuid, server_default=sa.text("gen_random_uuid()"))
        )
        """,
        'op.drop_column("orders", "token")',
        name="0003_later",
        down="0002_check",
    )
    config = write_project(
        tmp_path,
        {"0001_base.py": BASE, "0002_check.py": validated, "0003_later.py": later},
        MODELS_ENV,
    )
    settings = load_settings(database_url=empty_postgres_url)
    upgrade(config, revision="0002_check", settings=settings)

    asked = lint_migrations(config, settings=settings)
    strict = lint_migrations(config, settings=settings, large_table_rows=1)
    offline = lint_migrations(config, since="0002_check")

    # The database holds a validated NOT NULL check and a two-row orders table.
    assert asked.revisions == ("0003_later",)
    assert asked.findings == ()
    assert [f.rule for f in strict.findings] == ["volatile-default"]
    assert [f.rule for f in offline.findings] == ["set-not-null", "volatile-default"]


def test_the_cli_prints_findings_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = case_project(tmp_path, "index-not-concurrent", safe=False)

    status = main(["db", "lint", "--config", str(config), "--since", "base"])

    output = capsys.readouterr().out
    assert status == 1
    assert f"0002_case.py:{marked_line(config)}: index-not-concurrent" in output
    assert RULES["index-not-concurrent"].instead in output
    assert output.endswith("2 revisions linted: 1 unsafe in 1\n")


def test_the_cli_speaks_json_and_exits_0_when_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = case_project(tmp_path, "index-not-concurrent", safe=True)

    status = main(["db", "lint", "--config", str(config), "--since", "base", "--format", "json"])

    document = json.loads(capsys.readouterr().out)
    assert status == 0
    assert document == {
        "ok": True,
        "revisions": ["0001_base", "0002_case"],
        "findings": [],
        "allowed": [],
    }


def test_the_cli_lists_the_rules_and_refuses_an_unknown_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = case_project(tmp_path, "index-not-concurrent", safe=True)

    listed = main(["db", "lint", "--rules"])
    rules_output = capsys.readouterr().out
    refused = main(["db", "lint", "--config", str(config), "--since", "nope"])

    assert listed == 0
    assert all(rule in rules_output for rule in RULES)
    assert refused == 2
    assert "--since nope" in capsys.readouterr().err


def test_statements_split_outside_quotes_comments_and_dollar_bodies() -> None:
    sql = """
        CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
        -- a comment; with a semicolon
        ALTER TABLE "Odd;Name" ADD COLUMN "x" text DEFAULT ';';
        /* block; comment */ SELECT 'it''s; fine'
    """

    statements = list(split_statements(sql))

    assert [s.text for s in statements] == [
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
        """ALTER TABLE "Odd;Name" ADD COLUMN "x" text DEFAULT ';'""",
        "SELECT 'it''s; fine'",
    ]
    assert statements[1].tokens[2].name == "Odd;Name"


def test_the_readme_exception_example_is_allowed_as_written(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [example] = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
        if "omnistack-lint: allow" in block
    ]
    countries = """
        revision = "0001_countries"
        down_revision = None


        def upgrade():
            op.create_table("countries", sa.Column("code", sa.Text, primary_key=True))


        def downgrade():
            op.drop_table("countries")
    """
    second = (
        'revision = "0002_code_index"\ndown_revision = "0001_countries"\n\n\n'
        + example
        + '\n\ndef downgrade() -> None:\n    op.drop_index("ix_countries_code", "countries")\n'
    )
    config = write_project(tmp_path, {"0001_countries.py": countries, "0002_index.py": second})

    report = lint_migrations(config, since="base")

    assert report.ok
    assert [f.rule for f in report.allowed] == ["index-not-concurrent"]
