"""Create the peer's tables and the benchmark's users, and print their ids as one JSON line.

    python -m benchmarks.peers.fsft.seed --database-url postgresql+psycopg://... --users 16

prints ``{"user_ids": ["<uuid>", ...]}``, the ids of ``bench-0@example.com`` …
``bench-<N-1>@example.com`` in that order. Running it again on the same database creates
nothing new and prints the same ids. It reads no ``PEER_*`` variable: it imports the models,
never the app's settings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from sqlmodel import Session, SQLModel, create_engine, select

from benchmarks.peers.fsft.models import User

# The peer has no sign-in route, so no password is ever checked; the template would store an
# Argon2 hash here; a leading "!" matches no hash scheme.
UNUSABLE_HASH = "!unusable"


def seed_users(database_url: str, count: int) -> list[str]:
    """Create the tables if missing and ``count`` active users; return their ids in order."""
    engine = create_engine(database_url)
    try:
        SQLModel.metadata.create_all(engine)
        ids: list[str] = []
        with Session(engine) as session:
            for index in range(count):
                email = f"bench-{index}@example.com"
                user = session.exec(select(User).where(User.email == email)).first()
                if user is None:
                    user = User(
                        email=email, hashed_password=UNUSABLE_HASH, full_name=f"Bench {index}"
                    )
                    session.add(user)
                ids.append(str(user.id))
            session.commit()
        return ids
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True, help="a postgresql+psycopg:// URL")
    parser.add_argument("--users", type=int, required=True, help="how many users to create")
    args = parser.parse_args(argv)
    print(json.dumps({"user_ids": seed_users(args.database_url, args.users)}))


if __name__ == "__main__":
    main()
