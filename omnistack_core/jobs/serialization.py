"""Jobs travel as JSON, not pickle: readable in Redis, safe to load, the same in every language."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    """Encode a job or a result; values JSON lacks (an exception in a result) become text."""
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def loads(data: bytes) -> Any:
    """Decode what :func:`dumps` encoded."""
    return json.loads(data)


def round_trip(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """``args`` and ``kwargs`` as the job will receive them, so inline mode matches the worker.

    Raises:
        TypeError: An argument JSON cannot carry (a datetime, a model instance): pass ids and
            plain data instead.
    """
    try:
        decoded = json.loads(json.dumps([list(args), kwargs]))
    except TypeError as exc:
        raise TypeError(f"job arguments must be JSON (ids and plain data): {exc}") from None
    return decoded[0], decoded[1]
