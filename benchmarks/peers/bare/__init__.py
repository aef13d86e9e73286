"""Bare FastAPI: the floor every other figure is compared with."""
