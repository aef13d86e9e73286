"""scripts/changelog_section.py: a version's release notes, or a refusal with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.changelog_section import ChangelogError, main, section

CHANGELOG = """\
# Changelog

Intro.

## [Unreleased]

### Added

- **ai**: something new.

## [1.1.0] - 2026-12-01

### Fixed

- **auth**: a fix.

### Added

- **jobs**: a job thing.

## [1.0.0] - 2026-11-01

### Added

- **settings**: the first release.

[Unreleased]: https://example.com/compare/v1.1.0...HEAD
[1.1.0]: https://example.com/compare/v1.0.0...v1.1.0
[1.0.0]: https://example.com/releases/tag/v1.0.0
"""


def test_a_version_in_the_middle_ends_at_the_next_heading() -> None:
    assert section(CHANGELOG, "1.1.0") == (
        "### Fixed\n\n- **auth**: a fix.\n\n### Added\n\n- **jobs**: a job thing.\n"
    )


def test_the_tag_name_finds_its_version() -> None:
    assert section(CHANGELOG, "v1.1.0") == section(CHANGELOG, "1.1.0")


def test_the_oldest_version_leaves_out_the_link_definitions() -> None:
    assert section(CHANGELOG, "v1.0.0") == "### Added\n\n- **settings**: the first release.\n"


def test_unreleased_is_a_section_too() -> None:
    assert section(CHANGELOG, "Unreleased") == "### Added\n\n- **ai**: something new.\n"


def test_a_version_without_a_section_is_refused() -> None:
    with pytest.raises(ChangelogError, match=r"no section for 1\.2\.0"):
        section(CHANGELOG, "v1.2.0")


def test_a_version_that_is_only_a_prefix_of_another_is_refused() -> None:
    with pytest.raises(ChangelogError, match=r"no section for 1\.1$"):
        section(CHANGELOG, "v1.1")


def test_a_section_without_a_date_is_refused() -> None:
    undated = CHANGELOG.replace("## [1.1.0] - 2026-12-01", "## [1.1.0]")

    with pytest.raises(ChangelogError, match="has no date"):
        section(undated, "1.1.0")


def test_an_empty_section_is_refused() -> None:
    empty = CHANGELOG.replace(
        "### Fixed\n\n- **auth**: a fix.\n\n### Added\n\n- **jobs**: a job thing.\n", ""
    )

    with pytest.raises(ChangelogError, match="empty"):
        section(empty, "1.1.0")


def test_the_command_prints_the_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(CHANGELOG)

    assert main(["v1.0.0", str(path)]) == 0
    assert capsys.readouterr().out == "### Added\n\n- **settings**: the first release.\n"


def test_the_command_fails_with_the_reason_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "CHANGELOG.md"
    path.write_text(CHANGELOG)

    assert main(["v2.0.0", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no section for 2.0.0" in captured.err
