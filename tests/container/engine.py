"""A Docker engine for the container tests: found, or started and stopped by the tests.

An engine that already answers (``DOCKER_HOST``, or the default socket) is used as it is, and
its images are left alone: the build pulls the real base images there. Otherwise, as root with
Debian's ``docker.io`` installed (``.ci/run`` installs it), the tests start a ``dockerd`` of
their own on its own socket, data root and log file, so that it never meets a system engine,
and stop it at the end of the session. Only in that engine do they make the stand-ins of the
base images the Dockerfile names (no registry is reachable from the project's machines): the
data root outlives the run, so the stand-ins are made once and then found.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Debian's client: the /usr/local/bin one some machines carry lacks buildx, and BuildKit
# (`RUN --mount`) then needs DOCKER_BUILDKIT=1 with a client that speaks it.
DEBIAN_CLIENT = Path("/usr/bin/docker")
DOCKERD = Path("/usr/sbin/dockerd")

OWN_SOCKET = Path("/run/omnistack-docker.sock")
OWN_DATA_ROOT = Path("/var/lib/omnistack-docker")
OWN_EXEC_ROOT = Path("/run/omnistack-docker")
OWN_LOG = Path("/var/log/omnistack-dockerd.log")
# Where .ci/run unpacks Compose v2 (Debian trixie's docker-compose 2.26.1-4, a CLI plugin) when
# the client has none: a DOCKER_CONFIG directory holding cli-plugins/docker-compose.
COMPOSE_CONFIG = Path("/var/cache/omnistack-compose")

DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the python:*-slim-bookworm images read for apt: the Dockerfile's runtime stage installs
# curl with apt-get, so the stand-in keeps the same sources, security updates included.
DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class EngineUnavailableError(Exception):
    """No engine answers and none can be started here; the message says why."""


@dataclass
class Engine:
    """A Docker engine the tests talk to through Debian's client."""

    host: str
    started: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        """The client's environment: this engine, BuildKit on."""
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "1"}

    def docker(
        self, *arguments: str, check: bool = True, timeout: float = 900, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker <arguments>``; with ``check``, a failure fails with its output."""
        result = subprocess.run(
            [str(DEBIAN_CLIENT), *arguments],
            env=self.environment,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode:
            message = f"docker {' '.join(arguments)} exited {result.returncode}"
            raise AssertionError(f"{message}\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def own(self) -> bool:
        """Whether this is the tests' own engine (started now or by an earlier run)."""
        return self.host == f"unix://{OWN_SOCKET}"

    def discard(self, image: str) -> None:
        """Free what building ``image`` left behind.

        In the tests' own engine, the image, what earlier builds left untagged and the build
        cache: each ``--no-cache`` build adds a few hundred MB of layers, gigabytes after a few
        runs, while the stand-in base images (images, not cache) stay. In someone's engine,
        only the tag these tests gave: the rest is theirs.
        """
        self.docker("image", "rm", image, check=False)
        if self.own:
            self.docker("image", "prune", "--force", check=False)
            self.docker("builder", "prune", "--all", "--force", check=False)

    def has_image(self, reference: str) -> bool:
        return self.docker("image", "inspect", reference, check=False).returncode == 0

    def stop(self) -> None:
        """Stop the engine if these tests started it; an engine found is left running."""
        if self.started is None:
            return
        self.started.send_signal(signal.SIGTERM)
        try:
            self.started.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.started.kill()
            self.started.wait()
        self.started = None


def compose_environment(engine: Engine) -> dict[str, str]:
    """The client's environment in which ``docker compose`` is Compose v2.

    The client's own plugin when it has one, else the one ``.ci/run`` put in
    :data:`COMPOSE_CONFIG` (as ``DOCKER_CONFIG``, which also hides ``~/.docker/config.json``:
    nothing here logs in to a registry). Raises EngineUnavailableError naming what to install.
    """
    candidates = [engine.environment]
    if (COMPOSE_CONFIG / "cli-plugins" / "docker-compose").is_file():
        candidates.append({**engine.environment, "DOCKER_CONFIG": str(COMPOSE_CONFIG)})
    for environment in candidates:
        result = subprocess.run(
            [str(DEBIAN_CLIENT), "compose", "version", "--short"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        # v1 is no plugin (the client answers "compose" is unknown); v2 prints 2.x.
        if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2."):
            return environment
    raise EngineUnavailableError(
        "Compose v2 is missing: no `docker compose` plugin, and none in "
        f"{COMPOSE_CONFIG}/cli-plugins (.ci/run fetches Debian trixie's docker-compose there)"
    )


def _answers(host: str) -> bool:
    try:
        result = subprocess.run(
            [str(DEBIAN_CLIENT), "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def find_or_start() -> Engine:
    """The engine that answers, or one started here; raises EngineUnavailableError."""
    if not DEBIAN_CLIENT.is_file():
        raise EngineUnavailableError(
            f"{DEBIAN_CLIENT} is missing: install Debian's docker.io (.ci/run does)"
        )
    chosen = os.environ.get("DOCKER_HOST")
    if chosen:
        if _answers(chosen):
            return Engine(chosen)
        raise EngineUnavailableError(f"DOCKER_HOST={chosen} does not answer")
    for host in ("unix:///var/run/docker.sock", f"unix://{OWN_SOCKET}"):
        if _answers(host):
            return Engine(host)
    if os.geteuid() != 0:
        raise EngineUnavailableError("no Docker engine answers, and starting one needs root")
    if not DOCKERD.is_file():
        raise EngineUnavailableError(
            f"no Docker engine answers and {DOCKERD} is missing: install docker.io (.ci/run does)"
        )
    return _start()


def _start() -> Engine:
    host = f"unix://{OWN_SOCKET}"
    OWN_EXEC_ROOT.mkdir(parents=True, exist_ok=True)
    log = OWN_LOG.open("ab")
    process = subprocess.Popen(
        [
            str(DOCKERD),
            "--host",
            host,
            "--data-root",
            str(OWN_DATA_ROOT),
            "--exec-root",
            str(OWN_EXEC_ROOT / "exec"),
            "--pidfile",
            str(OWN_EXEC_ROOT / "dockerd.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group: a Ctrl-C in pytest's terminal does not reach the engine,
        # which the session's teardown stops in order.
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailableError(
                f"dockerd exited {process.returncode}; its log is {OWN_LOG}"
            )
        if _answers(host):
            return Engine(host, started=process)
        time.sleep(0.5)
    process.terminate()
    process.wait(timeout=30)
    raise EngineUnavailableError(f"dockerd did not answer within 60 s; its log is {OWN_LOG}")


# --- stand-ins for the base images ---------------------------------------------------------


def make_python_image(engine: Engine, reference: str) -> None:
    """Tag a Debian bookworm with python3 as ``reference`` (a ``python:3.11-slim-bookworm``).

    Debian bookworm's python3 is 3.11, which is why the tests build the 3.11 answer. The links
    and the apt clean-up are what the slim image has: the Dockerfile calls
    ``/usr/local/bin/python`` through uv and the runtime stage runs ``apt-get update`` itself.
    """
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise EngineUnavailableError("debootstrap is missing: install it (.ci/run does)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="omnistack-rootfs-") as directory:
        root = Path(directory)
        subprocess.run(
            [
                "nice",
                "-n",
                "10",
                debootstrap,
                "--variant=minbase",
                "--include=python3,ca-certificates",
                "bookworm",
                str(root),
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
        )
        for name in ("python", "python3"):
            (root / "usr/local/bin" / name).symlink_to("/usr/bin/python3")
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(DEBIAN_SOURCES)
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives", "var/log"):
            target = root / leftover
            for entry in target.glob("*"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                elif entry.name != "lock":
                    entry.unlink()
        with subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        ) as archive:
            imported = subprocess.run(
                [
                    str(DEBIAN_CLIENT),
                    "import",
                    "--change",
                    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["python3"]',
                    "-",
                    reference,
                ],
                stdin=archive.stdout,
                env=engine.environment,
                capture_output=True,
                text=True,
                check=False,
            )
        if imported.returncode or archive.returncode:
            raise AssertionError(f"docker import failed: {imported.stderr}")
    engine.timings[reference] = time.monotonic() - started


def _uv_wheel(version: str) -> bytes:
    """uv's manylinux wheel for this machine, from PyPI, checked against PyPI's digest."""
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
    arch = machine[platform.machine().lower()]
    with httpx.Client(timeout=120, follow_redirects=True) as client:
        # The project's page, not /pypi/uv/<version>/json: not every mirror serves the latter.
        project = client.get("https://pypi.org/pypi/uv/json")
        project.raise_for_status()
        for artifact in project.json()["releases"].get(version, []):
            name = artifact["filename"]
            if name.endswith(".whl") and "manylinux" in name and arch in name:
                # Relative on some mirrors: resolved against the page that names it.
                wheel = client.get(project.url.join(artifact["url"]))
                wheel.raise_for_status()
                if hashlib.sha256(wheel.content).hexdigest() != artifact["digests"]["sha256"]:
                    raise AssertionError(f"{name}: the download does not match PyPI's digest")
                return wheel.content
    raise AssertionError(f"PyPI has no manylinux {arch} wheel of uv {version}")


def make_uv_image(engine: Engine, reference: str) -> None:
    """Tag an image holding ``/uv`` and ``/uvx`` at its root (as uv's own image) as ``reference``.

    The binaries come from the PyPI wheel of the same version, which Astral builds from the
    same release.
    """
    started = time.monotonic()
    version = reference.rsplit(":", 1)[1]
    with tempfile.TemporaryDirectory(prefix="omnistack-uv-") as directory:
        context = Path(directory)
        with zipfile.ZipFile(io.BytesIO(_uv_wheel(version))) as wheel:
            for member in wheel.namelist():
                name = member.rsplit("/", 1)[-1]
                if member.startswith(f"uv-{version}.data/scripts/") and name in {"uv", "uvx"}:
                    (context / name).write_bytes(wheel.read(member))
                    (context / name).chmod(0o755)
        if not (context / "uv").is_file() or not (context / "uvx").is_file():
            raise AssertionError(f"the uv {version} wheel holds no uv and uvx")
        (context / "Dockerfile").write_text("FROM scratch\nCOPY uv uvx /\n")
        engine.docker("build", "-t", reference, str(context), timeout=300)
    engine.timings[reference] = time.monotonic() - started


def base_images(dockerfile: str) -> tuple[str, str]:
    """The Python and uv images a rendered Dockerfile builds from, its ARG default expanded."""
    python_version = uv_image = ""
    for line in dockerfile.splitlines():
        if line.startswith("ARG PYTHON_VERSION="):
            python_version = line.split("=", 1)[1].strip()
        if line.startswith("COPY --from=ghcr.io/astral-sh/uv:"):
            uv_image = line.split("=", 1)[1].split()[0]
    if not python_version or not uv_image:
        raise AssertionError("the Dockerfile names no PYTHON_VERSION default or no uv image")
    return f"python:{python_version}-slim-bookworm", uv_image


def ensure_base_images(engine: Engine, dockerfile: str) -> None:
    """Make the stand-ins the Dockerfile needs, in an engine these tests started, once."""
    if not engine.own:
        return  # someone's own engine: the build pulls the real images
    python_image, uv_image = base_images(dockerfile)
    if not engine.has_image(python_image):
        make_python_image(engine, python_image)
    if not engine.has_image(uv_image):
        make_uv_image(engine, uv_image)


@contextlib.contextmanager
def running_engine() -> Iterator[Engine]:
    engine = find_or_start()
    try:
        yield engine
    finally:
        engine.stop()
