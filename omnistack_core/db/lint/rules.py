"""The migration linter's rules: what each flags, why it hurts, and what to do instead.

Every rule is about a deploy where migrations run first and the previous version of the code
keeps serving meanwhile (the deployment guide's order). A rule fires when a statement would
hold a lock that stops reads or writes for as long as the table is scanned or rewritten, or
would break the code that is still running.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule.

    Attributes:
        id: The name findings, docs and ``# omnistack-lint: allow <id>`` comments use.
        why: What goes wrong in production.
        instead: The safe pattern.
    """

    id: str
    why: str
    instead: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "add-column-not-null",
            "Adding a NOT NULL column without a default fails on a table that has rows, and "
            "the running code, which does not know the column, cannot insert into it.",
            "Add the column nullable (or with a constant server default), backfill it, then "
            "make it NOT NULL in a later revision through a validated CHECK "
            "(see set-not-null).",
        ),
        Rule(
            "set-not-null",
            "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock: no reads or "
            "writes until it ends.",
            "ADD CONSTRAINT ... CHECK (column IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT "
            "(in a later transaction); then SET NOT NULL, which PostgreSQL 12+ proves from "
            "the validated check without a scan; then drop the check.",
        ),
        Rule(
            "drop-mapped-column",
            "The models still map this column: the code being deployed (and the code "
            "running now) selects it, and every such query fails once it is gone.",
            "Stop using the column and remove it from the models in one release; drop it in "
            "a migration of the release after.",
        ),
        Rule(
            "drop-mapped-table",
            "The models still map this table: the code being deployed (and the code running "
            "now) queries it, and every such query fails once it is gone.",
            "Remove the model in one release; drop the table in a migration of the release after.",
        ),
        Rule(
            "rename-column",
            "The running code still uses the old name: every query naming it fails from the "
            "moment the migration commits until the new code is out.",
            "Add the new column, write both, backfill, read the new one, then drop the old "
            "(the five-step pattern in the migrations guide).",
        ),
        Rule(
            "rename-table",
            "The running code still uses the old name: every query on it fails from the "
            "moment the migration commits until the new code is out.",
            "Create the new table (or a view under the new name), move the code over, then "
            "drop the old name in a later release.",
        ),
        Rule(
            "change-column-type",
            "Changing a column's type rewrites the table and its indexes under an ACCESS "
            "EXCLUSIVE lock (except for a few binary-compatible changes), and the running "
            "code may send values of the old type.",
            "Add a column of the new type, write both, backfill, switch reads, drop the old "
            "column (the five-step pattern); allow this rule only for a change PostgreSQL "
            "makes without a rewrite, such as widening a VARCHAR.",
        ),
        Rule(
            "index-not-concurrent",
            "CREATE INDEX without CONCURRENTLY blocks every write to the table until the "
            "index is built.",
            "CREATE INDEX CONCURRENTLY, outside a transaction: op.create_index(..., "
            "postgresql_concurrently=True) inside "
            "`with op.get_context().autocommit_block():`.",
        ),
        Rule(
            "concurrent-in-transaction",
            "PostgreSQL refuses CONCURRENTLY inside a transaction block, and Alembic runs "
            "each revision in one: the migration fails.",
            "Run the statement inside `with op.get_context().autocommit_block():`.",
        ),
        Rule(
            "foreign-key-not-valid",
            "Adding a foreign key checks every existing row while it locks both tables "
            "against writes.",
            "Add it with NOT VALID (op.create_foreign_key(..., postgresql_not_valid=True)), "
            "then VALIDATE CONSTRAINT in a later transaction, which lets writes continue.",
        ),
        Rule(
            "check-not-valid",
            "Adding a CHECK constraint scans the table under an ACCESS EXCLUSIVE lock.",
            "Add it with NOT VALID, then VALIDATE CONSTRAINT in a later transaction, which "
            "lets reads and writes continue.",
        ),
        Rule(
            "unique-without-index",
            "A UNIQUE or PRIMARY KEY constraint builds its index while it blocks every write "
            "to the table.",
            "CREATE UNIQUE INDEX CONCURRENTLY first (in an autocommit block), then ADD "
            "CONSTRAINT ... UNIQUE USING INDEX (or PRIMARY KEY USING INDEX), which is "
            "instant.",
        ),
        Rule(
            "volatile-default",
            "A default computed per row (a volatile function, a serial or identity column, "
            "a stored generated column) rewrites the whole table under an ACCESS EXCLUSIVE "
            "lock; a constant default does not.",
            "Add the column with no default (or a constant one), set the default for new "
            "rows with ALTER COLUMN ... SET DEFAULT, and backfill existing rows in batches.",
        ),
        Rule(
            "missing-downgrade",
            "A revision without a working downgrade cannot be rolled back: `omnistack db "
            "downgrade` stops there.",
            "Write downgrade() to undo upgrade(); where undoing loses data, say so in a "
            "comment and still make the schema go back.",
        ),
        Rule(
            "unknown-rule",
            "An allow comment names no rule this linter knows, so it silences nothing and "
            "may hide a typo from review.",
            "Use one of the rule ids `omnistack db lint --rules` lists.",
        ),
    )
}
