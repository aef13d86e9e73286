"""CHANGELOG.md keeps the Keep a Changelog form the release notes are cut from."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from packaging.version import Version

from scripts.changelog_section import HEADING, section

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def sections() -> list[tuple[str, str | None, str]]:
    text = CHANGELOG.read_text()
    headings = list(HEADING.finditer(text))
    assert len(headings) == text.count("\n## "), "a ## heading is not '## [version] - date'"
    return [
        (
            heading["version"],
            heading["date"],
            text[heading.end() : headings[i + 1].start() if i + 1 < len(headings) else None],
        )
        for i, heading in enumerate(headings)
    ]


def test_it_opens_as_a_keep_a_changelog_file() -> None:
    text = CHANGELOG.read_text()

    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    assert sections()[0][0] == "Unreleased"


def test_releases_are_dated_and_newest_first() -> None:
    released = sections()[1:]

    versions = [Version(version) for version, _, _ in released]
    dates = [date.fromisoformat(day or "") for _, day, _ in released]
    assert versions == sorted(versions, reverse=True)
    assert dates == sorted(dates, reverse=True)


def test_entries_sit_under_the_standard_kinds_each_prefixed_by_its_module() -> None:
    for version, _, body in sections():
        kinds = re.findall(r"^### (.+)$", body, flags=re.MULTILINE)
        assert kinds, version
        assert set(kinds) <= KINDS, (version, kinds)
        assert len(kinds) == len(set(kinds)), version
        for entry in re.findall(r"^- .*$", body, flags=re.MULTILINE):
            assert re.match(r"- \*\*[^*]+\*\*", entry), entry


def test_the_unreleased_notes_can_be_cut() -> None:
    assert section(CHANGELOG.read_text(), "Unreleased").startswith("### ")
