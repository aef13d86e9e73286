"""Scripts the release process runs (importable so that tests can call their functions)."""
