"""What a lint run found, as text for people and JSON for tools."""

from __future__ import annotations

import json
from dataclasses import dataclass

from omnistack_core.db.lint.checks import Finding
from omnistack_core.db.lint.rules import RULES


@dataclass(frozen=True, slots=True)
class LintReport:
    """The result of linting a run of revisions.

    Attributes:
        revisions: The revisions linted, oldest first.
        findings: The unsafe statements, in the order the revisions run.
        allowed: Findings a reviewed ``# omnistack-lint: allow <rule>`` comment silenced.
    """

    revisions: tuple[str, ...]
    findings: tuple[Finding, ...]
    allowed: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether nothing unsafe was found."""
        return not self.findings


def render_text(report: LintReport) -> str:
    """The report as people read it: one block per finding, then a summary line."""
    blocks = []
    for finding in report.findings:
        rule = RULES[finding.rule]
        blocks.append(
            f"{finding.path}:{finding.line}: {finding.rule} (revision {finding.revision})\n"
            f"  {finding.statement}\n"
            f"  why: {rule.why}\n"
            f"  instead: {rule.instead}\n"
        )
    count = len(report.revisions)
    summary = f"{count} revision{'' if count == 1 else 's'} linted: "
    if report.findings:
        unsafe = len({finding.revision for finding in report.findings})
        summary += f"{len(report.findings)} unsafe in {unsafe}"
    else:
        summary += "nothing unsafe"
    if report.allowed:
        summary += f" ({len(report.allowed)} allowed by reviewed exceptions)"
    return "\n".join([*blocks, summary]) + "\n"


def render_json(report: LintReport) -> str:
    """The report as one JSON document: ``ok``, ``revisions``, ``findings``, ``allowed``."""

    def entry(finding: Finding) -> dict[str, object]:
        rule = RULES[finding.rule]
        return {
            "rule": finding.rule,
            "revision": finding.revision,
            "path": finding.path,
            "line": finding.line,
            "statement": finding.statement,
            "why": rule.why,
            "instead": rule.instead,
        }

    document = {
        "ok": report.ok,
        "revisions": list(report.revisions),
        "findings": [entry(finding) for finding in report.findings],
        "allowed": [entry(finding) for finding in report.allowed],
    }
    return json.dumps(document, indent=2) + "\n"
