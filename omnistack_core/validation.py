"""Input types whose every valid value the database accepts.

A value the database refuses must be refused at the edge, with a 422 naming the field,
instead of reaching the driver and coming back as a 500:

- PostgreSQL's ``integer`` holds -2**31 .. 2**31-1 and ``bigint`` -2**63 .. 2**63-1
  (SQLite's integer is the same 64 bits); a larger id in a path is a 500 there, not a 404.
- PostgreSQL's text types refuse the NUL character. (A lone surrogate, which JSON can carry
  as an escaped ``ud800``, is already refused by pydantic's ``str``.)
- SQLite returns timestamps without their offset; ``UtcDateTime`` gives every database's
  timestamps the same shape in responses (``+00:00``).

Use them in request models and route parameters::

    class ItemIn(BaseModel):
        name: StorableStr = Field(min_length=1, max_length=200)


    @router.get("/items/{item_id}")
    async def read_item(item_id: RowId) -> ItemOut: ...
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from annotated_types import Ge, Le
from pydantic import AfterValidator, PlainSerializer, WithJsonSchema

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "BigRowId",
    "Int32",
    "Int64",
    "RowId",
    "StorableStr",
    "UtcDateTime",
    "as_utc",
    "storable_text",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def storable_text(value: str) -> str:
    """Return ``value`` when every database stores it as sent; raise ``ValueError`` if not."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def as_utc(value: datetime) -> datetime:
    """``value`` with its UTC offset; a naive timestamp (SQLite's) is taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


StorableStr = Annotated[str, AfterValidator(storable_text)]
"""A string PostgreSQL and SQLite store as sent: no NUL character."""

Int32 = Annotated[int, Ge(INT32_MIN), Le(INT32_MAX)]
"""An integer that fits PostgreSQL's ``integer`` column."""

Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
"""An integer that fits a ``bigint`` column (and SQLite's integer)."""

RowId = Annotated[int, Ge(1), Le(INT32_MAX)]
"""The id of a row whose primary key is an ``integer`` column."""

BigRowId = Annotated[int, Ge(1), Le(INT64_MAX)]
"""The id of a row whose primary key is a ``bigint`` column."""

UtcDateTime = Annotated[
    datetime,
    AfterValidator(as_utc),
    PlainSerializer(lambda value: as_utc(value).isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A timestamp that always carries its UTC offset, whichever database it came from."""
