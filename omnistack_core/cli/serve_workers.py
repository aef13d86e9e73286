"""``omnistack serve`` with ``WEB_CONCURRENCY`` above 1: uvicorn's supervisor and its workers.

uvicorn starts each worker with multiprocessing's *spawn*: a fresh interpreter that receives
the :class:`uvicorn.Config` by pickling and imports the app itself. So the configuration
carries data only (the app spec, the bounds, the trusted peers) and :class:`WorkerConfig`
builds, in each worker, what a pickle cannot carry: the bounded protocol class (made at run
time) and the app wrapped for the platform's client-address header. Every worker therefore
serves exactly what a single process serves.

The supervisor stays small: it never imports the app. Before any worker starts, one
short-lived process builds the app and reports a bad configuration once, as a single process
would; the supervisor then prepares ``PROMETHEUS_MULTIPROC_DIR`` (each worker imports
``prometheus_client`` afresh and reads it then) and removes a dead worker's live gauges.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from omnistack_core.cli.client_address import TrustedPeers, client_from_header
from omnistack_core.cli.service_app import AppNotFoundError, load_app, load_app_or_report
from omnistack_core.errors import ConfigurationError, MissingDependencyError
from omnistack_core.startup_errors import OutputFormat, report

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from omnistack_core.cli.http_bounds import ServerBounds

METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


class WorkerConfig(Config):
    """The uvicorn configuration of a worker: plain data in the supervisor, built in the worker."""

    def __init__(
        self,
        spec: str,
        *,
        bounds: ServerBounds,
        trusted: list[str],
        client_ip_header: str,
        **options: Any,
    ) -> None:
        self.bounds = bounds
        self.trusted = trusted
        self.client_ip_header = client_ip_header
        # load() puts the bounded class of the same parser in place of uvicorn's.
        super().__init__(spec, http="auto", **options)

    def load(self) -> None:
        """Load as uvicorn does, then hold connections to the bounds."""
        super().load()
        self.http_protocol_class = self.bounds.protocol()

    def load_app(self) -> ASGIApp:
        """Build the app as a single process does; a worker that cannot, stops the supervisor."""
        try:
            app: ASGIApp = load_app(str(self.app))
        except (ConfigurationError, MissingDependencyError) as exc:
            report(exc, OutputFormat.from_environment())
            sys.exit(STARTUP_FAILURE)
        except AppNotFoundError as exc:
            print(f"error: cannot load the app {self.app}: {exc}", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)
        if self.client_ip_header and self.trusted:
            app = client_from_header(app, TrustedPeers(self.trusted), self.client_ip_header)
        return app


def app_starts(spec: str) -> bool:
    """Whether the app at ``spec`` builds, judged in a process of its own, problems reported.

    The supervisor only watches the workers; building the app in it would keep the app's own
    modules there for nothing (34 MiB of the every-module service's 102 MiB: the supervisor
    holds 68 MiB as it is, for the command's own imports).
    """
    checker = multiprocessing.get_context("spawn").Process(target=_build, args=(spec,))
    checker.start()
    checker.join()
    return checker.exitcode == 0


def _build(spec: str) -> None:
    sys.exit(0 if load_app_or_report(spec) is not None else 1)


def listening_socket(config: Config) -> socket.socket:
    """The socket every worker accepts on, bound as uvicorn binds it, marked as TCP.

    uvicorn leaves the socket's protocol at 0 (Kludex/uvicorn#3149), connections accepted on it
    inherit that, and asyncio turns Nagle's algorithm off only on a socket that says TCP. A
    response written in two parts (header, then body) then waits for the client's delayed ACK:
    about 40 ms a request on a kept-alive connection, a third of the throughput measured.
    """
    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound
    return socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())


class MetricsDirectory:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers: the one set, emptied, else a private one."""

    def __init__(self) -> None:
        configured = os.environ.get(METRICS_DIRECTORY, "")
        self.private = not configured
        self.path = Path(configured or tempfile.mkdtemp(prefix="omnistack-metrics-"))
        # Made now: the checker, given the variable, writes its values there as it builds.
        self.path.mkdir(parents=True, exist_ok=True)

    def prepare(self) -> None:
        """Empty the directory of earlier values and name it to the workers.

        Values a previous run left would be added to this run's (and the checker's, all zero,
        would show as a process that is gone). Only the client's own files are removed.
        """
        for stale in self.path.glob("*.db"):
            stale.unlink(missing_ok=True)
        os.environ[METRICS_DIRECTORY] = str(self.path)

    def close(self) -> None:
        """Remove the directory if it was made here."""
        if self.private:
            shutil.rmtree(self.path, ignore_errors=True)


class Supervisor(Multiprocess):
    """The uvicorn supervisor, telling the metrics when a worker is gone.

    A worker's live gauges (``http_requests_in_progress``) would otherwise be summed after it
    died, with whatever it was serving then. uvicorn offers no exit hook, so the check runs
    where it replaces dead workers, against the workers seen the time before.
    """

    def __init__(self, config: Config, sockets: list[Any], metrics: MetricsDirectory) -> None:
        super().__init__(config, sockets)
        self.metrics = metrics
        self._seen: set[int] = set()

    @property
    def failed_to_start(self) -> bool:
        """Whether it stopped because a worker could not start (its app or its lifespan)."""
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)

    def keep_subprocess_alive(self) -> None:
        """Replace dead workers as uvicorn does; forget the live gauges of those gone."""
        super().keep_subprocess_alive()
        running = {process.pid for process in self.processes if process.pid is not None}
        gone = self._seen - running
        if gone:
            _mark_dead(gone, self.metrics.path)
        self._seen = running


def _mark_dead(pids: set[int], directory: Path) -> None:
    try:
        # Imported here, never before the directory is named: the supervisor serves no metrics.
        from prometheus_client import multiprocess  # noqa: PLC0415
    except ImportError:  # without the observability extra, no worker writes any
        return
    for pid in pids:
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
