"""The app's revisions (Alembic reads every ``v*.py`` here)."""
