"""Waiting in tests for a condition, with a deadline, instead of sleeping a fixed time.

A fixed ``sleep`` before an assertion is either too short on a loaded machine (the test
flakes) or longer than needed everywhere else (the suite crawls). ``wait_until`` asks again
every ``interval`` seconds and returns as soon as the condition holds; past the deadline it
fails the test with a message that says what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    message: str | Callable[[], str],
    interval: float = 0.1,
) -> T:
    """Call ``condition`` until it returns a true value; return that value.

    An exception from ``condition`` is not retried: it propagates at once, so a condition can
    fail early (``pytest.fail`` when the process it waits for has exited).

    Args:
        condition: What to ask; any true value ends the wait (a log record, a response).
        timeout: Seconds before the wait fails.
        message: What never happened, for the failure; a callable is called only then (to
            add a log's tail, say).
        interval: Seconds between calls.

    Returns:
        The first true value ``condition`` returned.

    Raises:
        AssertionError: ``condition`` was still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(_failure(message, timeout))
        time.sleep(min(interval, remaining))


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 - the twin of wait_until's; past it, a failure that says what
    message: str | Callable[[], str],
    interval: float = 0.1,
) -> T:
    """Await ``condition`` until it returns a true value; return that value.

    The async twin of :func:`wait_until`: the event loop keeps running between calls, so the
    condition may wait on the test's own server or task. ``condition`` may be a plain function
    or a coroutine function.

    Args:
        condition: What to ask; any true value ends the wait.
        timeout: Seconds before the wait fails.
        message: What never happened, for the failure.
        interval: Seconds between calls.

    Returns:
        The first true value ``condition`` returned.

    Raises:
        AssertionError: ``condition`` was still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = condition()
        result: T = await answer if inspect.isawaitable(answer) else answer
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(_failure(message, timeout))
        await asyncio.sleep(min(interval, remaining))


def _failure(message: str | Callable[[], str], timeout: float) -> str:
    text = message() if callable(message) else message
    return f"{text} (waited {timeout:g} s)"
