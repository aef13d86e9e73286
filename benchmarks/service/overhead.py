"""The in-process row: ``benchmarks/middleware_overhead.py --json``, when it offers ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.template.rendering import REPOSITORY

SCRIPT = REPOSITORY / "benchmarks" / "middleware_overhead.py"
KEYS = ("bare_us", "stack_us", "peer_us", "stack_added_us", "peer_added_us")


def measure(arguments: tuple[str, ...]) -> tuple[dict[str, float] | None, str]:
    """Per-request costs in µs (bare, our stack, the peer stack, and what each stack adds to
    bare, paired by round), or None and why not."""
    command = [sys.executable, str(SCRIPT)]
    usage = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if "--json" not in usage.stdout:
        return None, "middleware_overhead.py has no --json option in this tree"
    result = subprocess.run(
        [*command, "--json", *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPOSITORY,
    )
    if result.returncode != 0:
        return None, f"middleware_overhead.py failed: {result.stderr.strip()[-500:]}"
    try:
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        return {key: float(figures[key]) for key in KEYS}, ""
    except (ValueError, KeyError, IndexError, TypeError):
        return None, f"middleware_overhead.py printed no figures: {result.stdout[-300:]!r}"
