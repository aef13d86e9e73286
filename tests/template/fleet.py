"""Several copies of a generated service on 127.0.0.1, and a bounded load to drive them.

The scale-out test and ``benchmarks/scale_out.py`` share it: API processes under uvicorn
(each with its own ``PROMETHEUS_MULTIPROC_DIR``), arq workers, concurrent migrations, and a
load generator that fails over to a surviving instance the way a load balancer does.
Process output goes to files, never to pipes: a pipe nobody reads fills up and stalls the
process writing to it.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from omnistack_core.testing import wait_until
from tests.template.test_generated_project import UV, free_port, project_environment


@dataclass
class Process:
    """A process of the project with its output in ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _file: IO[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self._file.close()


@dataclass
class Api(Process):
    """An API process: uvicorn with ``workers`` worker processes on ``port``."""

    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    """The processes of one generated service, sharing one database and one Redis."""

    project: Path
    env: dict[str, str]
    logs: Path
    processes: list[Process] = field(default_factory=list)

    def _start(self, name: str, command: list[str], env: dict[str, str]) -> tuple[Any, Path, Any]:
        log = self.logs / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [UV, "run", *command],
            cwd=self.project,
            env=project_environment(**env),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        return popen, log, handle

    def migrate_at_once(self, count: int) -> list[str]:
        """Start ``count`` deploy migrations together; their outputs once all have ended."""
        started = [
            self._start(f"migrate-{n}", ["python", "scripts/migrate_production.py"], self.env)
            for n in range(count)
        ]
        outputs = []
        for popen, log, handle in started:
            status = popen.wait(timeout=180)
            handle.close()
            output = log.read_text()
            assert status == 0, output
            outputs.append(output)
        return outputs

    def start_api(self, name: str, *, workers: int = 2) -> Api:
        metrics = self.logs / f"{name}-metrics"
        metrics.mkdir()
        port = free_port()
        command = ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(workers), "--no-access-log"]
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        popen, log, handle = self._start(name, command, env)
        api = Api(name, popen, log, handle, port=port)
        self.processes.append(api)
        return api

    def start_worker(self, name: str) -> Process:
        popen, log, handle = self._start(name, ["arq", "app.jobs.worker.WorkerSettings"], self.env)
        worker = Process(name, popen, log, handle)
        self.processes.append(worker)
        return worker

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.wait()


def wait_until_ready(api: Api, timeout: float = 120) -> None:
    """Until the API answers ready (every worker process shares the port once it does)."""

    def ready() -> bool:
        assert api.popen.poll() is None, f"{api.name} exited:\n{api.output()}"
        try:
            return httpx.get(f"{api.base}/api/v1/public/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(
        ready,
        timeout=timeout,
        interval=0.25,
        message=lambda: f"{api.name} was not ready:\n{api.output()}",
    )


@dataclass(frozen=True)
class Call:
    """One request of a load: what to send."""

    kind: str
    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


@dataclass
class Result:
    """What a call got: the instance that answered, the status, the time taken."""

    call: Call
    instance: str
    status: int
    seconds: float
    body: Any = None
    failed_over: int = 0


class Load:
    """Sends calls to the live instances in turn, ``concurrency`` at a time.

    A call whose instance is gone (connection refused or dropped before an answer) goes to
    the next live instance, as a load balancer's retry would; one no instance could answer
    is a failure (status 0).
    """

    def __init__(self, apis: list[Api], concurrency: int = 8) -> None:
        self.apis = apis
        self.concurrency = concurrency
        self.gone: set[str] = set()
        self._turn = itertools.count()

    async def run(
        self, calls: list[Call], on_result: Callable[[int], None] | None = None
    ) -> list[Result]:
        limits = httpx.Limits(max_connections=self.concurrency)
        clients = {
            api.name: httpx.AsyncClient(base_url=api.base, timeout=30, limits=limits)
            for api in self.apis
        }
        gate = asyncio.Semaphore(self.concurrency)
        done = itertools.count(1)

        async def send(call: Call) -> Result:
            async with gate:
                result = await self._send(clients, call)
            if on_result is not None:
                on_result(next(done))
            return result

        try:
            return list(await asyncio.gather(*(send(call) for call in calls)))
        finally:
            for client in clients.values():
                await client.aclose()

    async def _send(self, clients: dict[str, httpx.AsyncClient], call: Call) -> Result:
        failed_over = 0
        for _ in range(len(self.apis)):
            live = [api for api in self.apis if api.name not in self.gone]
            if not live:
                break
            api = live[next(self._turn) % len(live)]
            started = time.perf_counter()
            try:
                response = await clients[api.name].request(
                    call.method, call.path, json=call.json, headers=call.headers
                )
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                # Refused, or closed before any answer: the request never ran there.
                self.gone.add(api.name)
                failed_over += 1
                continue
            body = response.json() if response.content else None
            elapsed = time.perf_counter() - started
            return Result(call, api.name, response.status_code, elapsed, body, failed_over)
        return Result(call, "", 0, 0.0, None, failed_over)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)] if ordered else 0.0
