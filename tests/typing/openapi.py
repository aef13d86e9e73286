"""Typed use of omnistack_core.openapi; mypy --strict checks this file, nothing runs it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from omnistack_core import ProblemError
from omnistack_core.openapi import declare_problems, describe_problems, problem_responses

app = FastAPI()
describe_problems(app)


@declare_problems(429)
async def not_too_often(request: Request) -> None:
    if request.headers.get("x-too-many"):
        raise ProblemError(429, "Slow down.")


@declare_problems(402)
class PaidOnly:
    async def __call__(self, request: Request) -> str:
        return request.headers.get("x-plan", "")


paid_only: PaidOnly = PaidOnly()


@app.get("/things/{thing_id}", responses=problem_responses(404, 409))
async def thing(
    thing_id: int,
    _: Annotated[None, Depends(not_too_often)],
    plan: Annotated[str, Depends(paid_only)],
) -> dict[str, int | str]:
    return {"id": thing_id, "plan": plan}
