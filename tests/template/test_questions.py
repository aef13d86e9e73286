"""copier.yml's questions: their defaults, and the answers they refuse with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.template.rendering import render, snapshot


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("template"))


def test_the_default_modules_stay_jobs_and_email(template: Path, tmp_path: Path) -> None:
    project = render(template, tmp_path / "project", {})

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["modules"] == ["jobs", "email"]
    assert not (project / "tests" / "test_billing.py").exists()


def test_billing_without_an_auth_provider_is_refused_with_the_reason(
    template: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="Billing needs an auth provider") as refused:
        render(template, tmp_path / "project", {"auth_provider": "none", "modules": ["billing"]})

    assert "supabase or clerk" in str(refused.value)
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize("provider", ["supabase", "clerk"])
def test_billing_with_an_auth_provider_installs_the_module(
    template: Path, tmp_path: Path, provider: str
) -> None:
    project = render(
        template, tmp_path / "project", {"auth_provider": provider, "modules": ["billing"]}
    )

    assert "BillingModule()" in (project / "app" / "main.py").read_text()
    assert "billing" in (project / "pyproject.toml").read_text().split("omnistack-core[")[1]
    assert (project / "tests" / "test_billing.py").is_file()
