"""The README's main job, run as written: generate a service from this checkout and serve it;
then the README's update commands, run as written in that service."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.template.migration_reports import applied_revisions
from tests.template.rendering import GIT_IDENTITY, REPOSITORY, commit, snapshot
from tests.template.test_generated_project import free_port, project_environment

pytestmark = pytest.mark.integration


def readme_command(marker: str) -> str:
    readme = (REPOSITORY / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", readme, flags=re.DOTALL)
    assert match is not None, f"README.md has no {marker} command"
    return match.group(1)


def main_job_command() -> str:
    return readme_command("main-job")


def test_the_readme_main_job_generates_a_service_it_serves_and_updates(tmp_path: Path) -> None:
    checkout = snapshot(tmp_path / "omnistack")
    port = free_port()
    job = subprocess.Popen(
        ["bash", "-c", main_job_command()],
        cwd=checkout,
        env=project_environment(PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server and its reloader stop together
    )
    try:
        deadline = time.monotonic() + 300
        health = None
        while time.monotonic() < deadline and job.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/public/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.5)
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        output, _ = job.communicate(timeout=60)

    assert health is not None, output
    assert health.status_code == 200
    service = tmp_path / "my-service"
    assert (service / "dev.db").exists()
    # The defaults: Supabase auth, jobs and email, each module's tables from its own branch.
    assert applied_revisions(output) == {
        "0001_initial",
        "0002_items_owner",
        "0003_items_owner_id_index",
        "omnistack_auth_0001",
        "omnistack_jobs_0001",
        "omnistack_email_0001",
        "omnistack_email_0002",
        "omnistack_email_0003",
    }
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    # Where `copier update` looks for the template: the checkout, wherever the service is.
    assert answers["_src_path"] == str(checkout)

    # A later commit of the template, for the update to bring.
    (checkout / "template" / "NOTICE.md").write_text("Added after the service was generated.\n")
    later = commit(checkout, "a later template commit")
    shell = project_environment(**GIT_IDENTITY)
    for marker in ("commit-job", "update-job"):
        result = subprocess.run(
            ["bash", "-e", "-c", readme_command(marker)],
            cwd=service,
            env=shell,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"{marker}:\n{result.stdout}\n{result.stderr}"

    assert (service / "NOTICE.md").read_text() == "Added after the service was generated.\n"
    updated = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert updated["_commit"] != answers["_commit"]
    assert later.startswith(updated["_commit"])
    assert "applied: nothing, the database was up to date" in result.stdout
