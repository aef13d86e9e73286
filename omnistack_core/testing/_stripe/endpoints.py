"""What every endpoint shares: the call it answers, one object by id, a page of a list."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omnistack_core.testing._stripe.errors import StripeError, no_such
from omnistack_core.testing._stripe.params import optional_integer, optional_string, refuse_unknown

RETRIEVE = frozenset({"expand"})
"""The parameters a retrieve (``GET /v1/<resource>/{id}``) takes."""
LIST_PAGING = frozenset({"ending_before", "expand", "limit", "starting_after"})
"""The parameters a list without filters takes."""


@dataclass(frozen=True, slots=True)
class Call:
    """A request, as an endpoint sees it once it is authenticated and not a replay."""

    method: str
    path: str
    params: dict[str, Any]
    request_id: str
    idempotency_key: str | None


Endpoint = Callable[[Call, str], dict[str, Any]]
"""An endpoint: it answers a call, given the id in its path (empty when the path has none)."""


def retrieve(
    call: Call, store: dict[str, dict[str, Any]], object_id: str, kind: str
) -> dict[str, Any]:
    """``GET /v1/<resource>/{id}``: a copy of the object, or 404."""
    refuse_unknown(call.params, RETRIEVE)
    found = store.get(object_id)
    if found is None:
        raise no_such(kind, object_id, "id", status=404)
    return copy.deepcopy(found)


def list_object(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """A list object holding copies of ``data``."""
    return {"object": "list", "data": copy.deepcopy(data), "has_more": False, "url": url}


def page(
    params: dict[str, Any], found: list[dict[str, Any]], kind: str, url: str
) -> dict[str, Any]:
    """The page of ``found`` that ``limit`` and ``starting_after`` ask for."""
    limit = optional_integer(params, "limit")
    if limit is not None and not 1 <= limit <= 100:
        raise StripeError(
            400,
            "This value must be greater than or equal to 1."
            if limit < 1
            else f"This value must be less than or equal to 100 (it currently is '{limit}').",
            param="limit",
        )
    after = optional_string(params, "starting_after")
    if after is not None:
        ids = [entry["id"] for entry in found]
        if after not in ids:
            raise no_such(kind, after, "starting_after")
        found = found[ids.index(after) + 1 :]
    shown = found[: limit or 10]
    listed = list_object(shown, url)
    listed["has_more"] = len(found) > len(shown)
    return listed
