"""The app's routes: its own, the signed-in ones, one that needs the ``pro`` plan, readiness."""

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from omnistack_core.auth import CurrentUser
from omnistack_core.billing import require_subscription
from omnistack_core.health import readiness_report

from .database import Session
from .models import Note, User

router = APIRouter()


class NewNote(BaseModel):
    """What a user writes."""

    text: str = Field(min_length=1, max_length=10_000)


class NoteOut(BaseModel):
    """A note as the API shows it."""

    id: int
    text: str


class UserOut(BaseModel):
    """One of the app's own users."""

    id: int
    name: str


@router.get("/users/{user_id}")
async def read_user(user_id: int, session: Session) -> UserOut:
    """One of the app's own users: a route it had before sign-in."""
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"No user {user_id}.")
    return UserOut(id=user.id, name=user.name)


@router.get("/notes")
async def list_notes(user: CurrentUser, session: Session) -> list[NoteOut]:
    """The signed-in user's notes, newest first."""
    notes = await session.scalars(
        select(Note).where(Note.author_id == user.id).order_by(Note.id.desc())
    )
    return [NoteOut(id=note.id, text=note.text) for note in notes]


@router.post("/notes", status_code=201)
async def add_note(body: NewNote, user: CurrentUser, session: Session) -> NoteOut:
    """Write a note as the signed-in user."""
    note = Note(author_id=user.id, text=body.text)
    session.add(note)
    await session.commit()
    return NoteOut(id=note.id, text=note.text)


@router.get("/notes/export", dependencies=[Depends(require_subscription(plans=["pro"]))])
async def export_notes(user: CurrentUser, session: Session) -> dict[str, list[str]]:
    """Every note of the user as plain text: for subscribers to the ``pro`` plan."""
    texts = await session.scalars(
        select(Note.text).where(Note.author_id == user.id).order_by(Note.id)
    )
    return {"notes": list(texts)}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: the app's database and the installed modules' checks; 503 when not ready."""
    report = await readiness_report(request.app)
    return JSONResponse(report.as_dict(), status_code=200 if report.ready else 503)
