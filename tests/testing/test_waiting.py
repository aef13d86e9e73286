"""wait_until and wait_until_async: the first true answer, or a failure that says what."""

from __future__ import annotations

import asyncio

import pytest

from omnistack_core.testing import wait_until, wait_until_async


def test_wait_until_returns_the_first_true_answer() -> None:
    answers = iter([None, 0, "", "found", "later"])

    assert wait_until(lambda: next(answers), timeout=5, interval=0.001, message="") == "found"


def test_wait_until_fails_with_the_message_past_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"^the lamp never lit \(waited 0.05 s\)$"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message="the lamp never lit")


def test_a_callable_message_is_read_only_on_failure() -> None:
    reads: list[str] = []

    def message() -> str:
        reads.append("read")
        return "the log says no"

    wait_until(lambda: True, timeout=1, message=message)
    assert reads == []
    with pytest.raises(AssertionError, match="the log says no"):
        wait_until(lambda: False, timeout=0.01, interval=0.01, message=message)
    assert reads == ["read"]


def test_an_exception_from_the_condition_ends_the_wait_at_once() -> None:
    calls = 0

    def condition() -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="the process exited"):
        wait_until(condition, timeout=60, message="")
    assert calls == 1


async def test_wait_until_async_lets_the_loop_run_while_it_waits() -> None:
    done = asyncio.Event()
    asyncio.get_running_loop().call_soon(done.set)

    assert await wait_until_async(done.is_set, timeout=5, interval=0.001, message="") is True


async def test_wait_until_async_awaits_a_coroutine_condition() -> None:
    answers = iter([None, None, {"status": "ok"}])

    async def status() -> dict[str, str] | None:
        return next(answers)

    found = await wait_until_async(status, timeout=5, interval=0.001, message="")

    assert found == {"status": "ok"}


async def test_wait_until_async_fails_with_the_message_past_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"^no worker \(waited 0.05 s\)$"):
        await wait_until_async(list, timeout=0.05, interval=0.01, message="no worker")
