"""Readers of the files platforms deploy a service from, one module per platform.

Each reader turns its platform's file into the processes it starts (the API, the jobs
worker, the migration) and, for each process, how the file gives it each variable: a value
written in the file, or a source the platform fills in (a secret to provide, a reference to a
database). :mod:`omnistack_core.cli.platform` judges them against what production requires.
No reader executes anything: ``.railway/railway.py`` is read with :mod:`ast`, and Kubernetes
overlays are resolved by :mod:`~omnistack_core.cli.platforms.kustomize`, in Python.
"""
