"""Print one version's section of CHANGELOG.md: the notes of its GitHub release.

    python scripts/changelog_section.py v1.2.0 [CHANGELOG.md]

The changelog is in Keep a Changelog form: ``## [1.2.0] - 2026-12-01`` headings, newest first,
below ``## [Unreleased]``. A leading ``v`` (the tag) is dropped. Exit status 1, with the reason,
when the version has no section or an empty one, so a release never goes out without notes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"

HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?[ \t]*$", re.M)
# Keep a Changelog ends with link definitions ("[1.2.0]: https://..."); they are no section's.
_LINKS = re.compile(r"(?:^\[[^\]]+\]: \S+[ \t]*\n?)+\Z", re.M)


class ChangelogError(Exception):
    """The changelog has no usable section for the version asked for."""


def section(changelog: str, version: str) -> str:
    """The body of ``version``'s section, without its heading.

    Args:
        changelog: The text of CHANGELOG.md.
        version: ``1.2.0``, ``v1.2.0`` or ``Unreleased``.

    Returns:
        The section's text, stripped, ending in a newline.

    Raises:
        ChangelogError: No section has that version, it has no date, or it is empty.
    """
    wanted = version.removeprefix("v")
    headings = list(HEADING.finditer(changelog))
    for index, heading in enumerate(headings):
        if heading["version"] != wanted:
            continue
        if wanted != "Unreleased" and heading["date"] is None:
            raise ChangelogError(f"the heading of {wanted} has no date: {heading[0]!r}")
        end = headings[index + 1].start() if index + 1 < len(headings) else len(changelog)
        body = _LINKS.sub("", changelog[heading.end() : end]).strip()
        if not body:
            raise ChangelogError(f"the section of {wanted} is empty")
        return body + "\n"
    raise ChangelogError(f"no section for {wanted}")


def main(argv: list[str] | None = None) -> int:
    """Print the section; 1 with the reason when there is none."""
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(arguments[1]) if len(arguments) == 2 else CHANGELOG
    try:
        sys.stdout.write(section(path.read_text(encoding="utf-8"), arguments[0]))
    except ChangelogError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
