"""Every dependency the library offers routes is async: FastAPI runs a plain ``def`` one in its
thread pool, a thread handoff on every request that uses it."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any, get_args, get_origin

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.params import Depends

# Every module's dependencies are looked at: the test needs every extra.
for _library, _extra in (
    ("jwt", "auth"),
    ("arq", "jobs"),
    ("resend", "email"),
    ("stripe", "billing"),
    ("openai", "ai"),
):
    pytest.importorskip(_library, reason=f"needs the {_extra} extra")

PACKAGES = [
    "omnistack_core.db",
    "omnistack_core.auth",
    "omnistack_core.jobs",
    "omnistack_core.email",
    "omnistack_core.billing",
    "omnistack_core.ai",
]


def offered_dependencies() -> Iterator[tuple[str, Callable[..., Any]]]:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            alias = getattr(module, name)
            if get_origin(alias) is not Annotated:
                continue
            for marker in get_args(alias)[1:]:
                if isinstance(marker, Depends) and marker.dependency is not None:
                    yield f"{package}.{name}", marker.dependency


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from calls(sub)


def is_async(call: Callable[..., Any]) -> bool:
    target = call if inspect.isroutine(call) else type(call).__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


OFFERED = sorted(offered_dependencies(), key=lambda pair: pair[0])


def test_the_packages_offer_the_dependencies_routes_use() -> None:
    names = {name for name, _ in OFFERED}

    assert {
        "omnistack_core.db.DbSession",
        "omnistack_core.db.DbReadSession",
        "omnistack_core.auth.CurrentUser",
        "omnistack_core.auth.CurrentUserRow",
        "omnistack_core.jobs.Queue",
        "omnistack_core.email.Mailer",
        "omnistack_core.ai.AI",
    } <= names


@pytest.mark.parametrize(("name", "dependency"), OFFERED, ids=[name for name, _ in OFFERED])
def test_a_dependency_and_all_it_depends_on_are_async(
    name: str, dependency: Callable[..., Any]
) -> None:
    chain = [dependency, *calls(get_dependant(path="/", call=dependency))]

    blocking = [getattr(call, "__qualname__", repr(call)) for call in chain if not is_async(call)]

    assert blocking == [], f"{name} runs {blocking} in the thread pool"
