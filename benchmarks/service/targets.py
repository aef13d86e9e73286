"""The processes measured: start one, time it to its readiness 200, read its RSS, stop it.

Each process runs in its own session (process group), so stopping it reaches every worker it
forked. Output goes to a file, never a pipe: a pipe nobody reads stalls the writer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

READY_POLL_SECONDS = 0.005
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0


class TargetError(RuntimeError):
    """A target failed: it did not start, or it exited. The message names it and its output."""


@dataclass(frozen=True)
class Route:
    """One request shape a target serves: what wrk sends, and which tokens it rotates."""

    method: str
    path: str
    body: str = ""
    tokens: tuple[str, ...] = ()


@dataclass
class Target:
    """How to start one thing measured.

    ``command`` may hold ``{port}``; ``PORT`` is set in its environment too.
    """

    name: str
    label: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    ready_path: str
    database: str | None = None
    """Its PostgreSQL database's name (connection churn is counted there)."""
    routes: dict[str, Route] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_of(port: int, path: str) -> int | None:
    """The status of ``GET path``, or None when nothing answers yet."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    return int(parts[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant (uvicorn's workers), from /proc."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pending += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return tree


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Server:
    """A running target on ``port``."""

    target: Target
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    _file: IO[bytes]
    started: float = field(default_factory=time.monotonic)
    """When the process was started (``time.monotonic``)."""

    def age(self) -> float:
        """Seconds since the process was started."""
        return time.monotonic() - self.started

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> tuple[float, int]:
        """MiB resident, summed over the process tree, and how many processes it has."""
        tree = process_tree(self.popen.pid)
        return sum(rss_kib(pid) for pid in tree) / 1024, len(tree)

    def output_tail(self, lines: int = 40) -> str:
        self._file.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise TargetError(
                f"{self.target.label} exited with {self.popen.returncode}; its output ends:\n"
                + self.output_tail()
            )

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers."""
        try:
            if self.popen.poll() is None:
                try:
                    os.killpg(self.popen.pid, signal.SIGTERM)
                    self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait()
            # Workers left behind by a supervisor killed outright.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        finally:
            self._file.close()


def start(target: Target, logs: Path, tag: str, extra_env: dict[str, str] | None = None) -> Server:
    """Start ``target``; returns at once (see :func:`wait_ready`)."""
    port = free_port()
    log = logs / f"{target.name}-{tag}.log"
    handle = log.open("wb")
    command = [part.format(port=port) for part in target.command]
    env = {**target.env, **(extra_env or {}), "PORT": str(port)}
    try:
        popen = subprocess.Popen(
            command,
            cwd=target.cwd,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        handle.close()
        raise TargetError(f"{target.label} could not start {command[0]}: {exc}") from exc
    return Server(target, popen, port, log, handle)


def wait_ready(server: Server, started: float, timeout: float = START_TIMEOUT_SECONDS) -> float:
    """Seconds from ``started`` (a ``perf_counter``) to the first 200 on the readiness path."""
    deadline = started + timeout
    while True:
        if status_of(server.port, server.target.ready_path) == 200:
            return time.perf_counter() - started
        server.check_alive()
        if time.perf_counter() > deadline:
            raise TargetError(
                f"{server.target.label} was not ready within {timeout:.0f} s; its output ends:\n"
                + server.output_tail()
            )
        time.sleep(READY_POLL_SECONDS)


def start_ready(
    target: Target, logs: Path, tag: str, extra_env: dict[str, str] | None = None
) -> tuple[Server, float]:
    """Start ``target`` and wait for readiness: the server and its start time in seconds."""
    started = time.perf_counter()
    server = start(target, logs, tag, extra_env)
    try:
        return server, wait_ready(server, started)
    except BaseException:
        server.stop()
        raise
