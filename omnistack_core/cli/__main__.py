"""``python -m omnistack_core.cli``: the ``omnistack`` command."""

from omnistack_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
