from __future__ import annotations

import subprocess
import sys

import omnistack_core.billing


def isort_order(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_exists() -> None:
    exported = omnistack_core.billing.__all__

    assert exported == sorted(exported, key=isort_order)
    assert len(exported) == len(set(exported))
    assert all(hasattr(omnistack_core.billing, name) for name in exported)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_starting_a_service_with_billing_does_not_load_the_stripe_sdk() -> None:
    result = run(
        "import asyncio, sys\n"
        "from omnistack_core import create_app\n"
        "from omnistack_core.auth import AuthModule\n"
        "from omnistack_core.billing import BillingModule\n"
        "app = create_app(modules=[AuthModule(), BillingModule()])\n"
        "async def start():\n"
        "    async with app.router.lifespan_context(app):\n"
        "        print('stripe' in sys.modules)\n"
        "asyncio.run(start())\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_without_the_extra_the_import_error_says_what_to_install() -> None:
    result = run("import sys\nsys.modules['stripe'] = None\nimport omnistack_core.billing")

    assert result.returncode == 1
    assert "pip install 'omnistack-core[billing]'" in result.stderr
    assert "MissingDependencyError" in result.stderr
