"""The app's Alembic migrations: its own tables and those of the modules it installs."""
