"""Request dependencies: a session per request, and the signed-in user read from its row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from jwt.exceptions import InvalidTokenError
from pydantic import ValidationError
from sqlmodel import Session

from benchmarks.peers.fsft.config import settings
from benchmarks.peers.fsft.db import engine
from benchmarks.peers.fsft.models import TokenPayload, User
from benchmarks.peers.fsft.security import ALGORITHM

# The template's scheme: the token URL only documents its (absent here) login route; a request
# without a bearer token gets the scheme's own 401.
reusable_oauth2 = OAuth2PasswordBearer(tokenUrl=f"{settings.api_v1_str}/login/access-token")


def get_db() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
TokenDep = Annotated[str, Depends(reusable_oauth2)]


def get_current_user(session: SessionDep, token: TokenDep) -> User:
    """The token's user, looked up by id on every request; 403, 404 or 400 as the template."""
    try:
        payload = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM])
        token_data = TokenPayload(**payload)
    except (InvalidTokenError, ValidationError):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN, detail="Could not validate credentials"
        ) from None
    user = session.get(User, token_data.sub)
    if user is None:
        raise HTTPException(status_code=404, detail="User not found")
    if not user.is_active:
        raise HTTPException(status_code=400, detail="Inactive user")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
