"""A real server and a real browser for the console's browser tests.

The app runs under uvicorn on a free port in a thread; Chromium is Debian's
(``/usr/bin/chromium``), driven by Playwright from PyPI. Without Chromium the tests skip
with the reason, unless ``OMNISTACK_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from omnistack_core.testing.pytest_plugin import services_required

# Debian's package first (what .ci/run installs), then Chrome where a CI image has it instead.
CANDIDATES = ("/usr/bin/chromium", "chromium", "google-chrome")
REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = REPOSITORY / "build" / "test-artifacts" / "console"


def require_chromium() -> str:
    """Chromium's path; skips (or fails, where services are required) when it is missing."""
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found is not None:
            return found
    reason = "Chromium is not installed (apt-get install chromium)"
    if services_required():
        pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL (``http://localhost:N``)."""
    port = free_port()
    # No log_config and no log_level: uvicorn would otherwise reconfigure the process's
    # uvicorn loggers, which later tests of our logging read.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
