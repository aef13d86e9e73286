"""The README's main job, run as written: generate a service from this checkout and serve it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.template.rendering import REPOSITORY, snapshot
from tests.template.test_generated_project import free_port, project_environment

pytestmark = pytest.mark.integration


def main_job_command() -> str:
    readme = (REPOSITORY / "README.md").read_text()
    match = re.search(r"<!-- main-job -->\n```bash\n(.+?)\n```", readme)
    assert match is not None, "README.md has no main-job command"
    return match.group(1)


def test_the_readme_main_job_generates_and_serves_a_service(tmp_path: Path) -> None:
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
    assert "applied: 0001_initial" in output
