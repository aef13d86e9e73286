"""The signed-in user's row of the users table, as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from omnistack_core.auth.dependencies import CurrentUser
from omnistack_core.auth.module import AuthModule
from omnistack_core.auth.users import UserRecord
from omnistack_core.errors import OmniStackError


async def current_user_row(request: Request, principal: CurrentUser) -> UserRecord:
    """The caller's row of the users table; 401 without a token, like :data:`CurrentUser`.

    One round trip: the row the user mirror wrote for this request if it wrote one, else a
    read by primary key, else (no row yet) the row written now.

    Raises:
        OmniStackError: The app runs ``AuthModule(users_table=None)``, which keeps no rows.
    """
    mirror = AuthModule.of(request.app).users
    if mirror is None:
        raise OmniStackError("CurrentUserRow needs the users table: AuthModule(users_table=None)")
    return await mirror.row_of(principal)


CurrentUserRow = Annotated[UserRecord, Depends(current_user_row)]
"""The signed-in user's row: ``async def handler(user: CurrentUserRow)``; 401 without one."""
