from __future__ import annotations

import subprocess
import sys

import omnistack_core.email


def isort_order(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_exists() -> None:
    exported = omnistack_core.email.__all__

    assert exported == sorted(exported, key=isort_order)
    assert len(exported) == len(set(exported))
    assert all(hasattr(omnistack_core.email, name) for name in exported)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_importing_the_module_loads_no_provider_sdk_or_template_engine() -> None:
    result = run(
        "import sys, omnistack_core.email\n"
        "print(sorted(m for m in ('resend', 'aiosmtplib', 'jinja2', 'httpx')"
        " if m in sys.modules))"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_the_extra_the_import_error_says_what_to_install() -> None:
    result = run("import sys\nsys.modules['resend'] = None\nimport omnistack_core.email")

    assert result.returncode != 0
    assert "MissingDependencyError" in result.stderr
    assert "pip install 'omnistack-core[email]'" in result.stderr
