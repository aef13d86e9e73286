"""full-stack-fastapi-template's backend stack and route shapes, rebuilt from PyPI packages.

The modules mirror the template's layout so that start-up imports the same things in the
same order: ``config`` (settings read at import), ``db`` (the engine, made at import),
``models``, ``security``, ``deps``, ``api`` (routers and the app) and ``main`` (Sentry, then
the app). ``seed`` creates the tables and the benchmark's users.
"""
