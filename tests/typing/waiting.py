"""Typed use of the waiting helpers; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from omnistack_core.testing import wait_until, wait_until_async


def first_line(lines: list[str]) -> str:
    line: str = wait_until(
        lambda: next(iter(lines), ""), timeout=5, message=lambda: f"no line in {lines}"
    )
    return line


async def ready(statuses: list[int]) -> int:
    async def status() -> int:
        return statuses[-1] if statuses else 0

    answered: int = await wait_until_async(status, timeout=5, message="never answered")
    seen: bool = await wait_until_async(lambda: bool(statuses), timeout=5, message="nothing")
    return answered + seen
