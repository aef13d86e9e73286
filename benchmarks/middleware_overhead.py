"""What OmniStack's request stack costs per request, against bare FastAPI and the usual peer stack.

Three apps serve the same trivial JSON endpoint, added after everything the app already has:

  (a) bare FastAPI;
  (b) the whole ``create_app()`` stack, as a service runs it in production: request id, JSON
      access log, Prometheus metrics, problem+json error handling, the body-size limit and
      the core routes (health, metrics) the request is routed past;
  (c) the stack people assemble today: prometheus-fastapi-instrumentator, asgi-correlation-id
      and a ``BaseHTTPMiddleware`` writing the same JSON access line.

Every access line goes through the same JSON formatter to /dev/null. Two measurements:

  * in process: the ASGI app called directly in a loop (no sockets), in interleaved rounds;
    each round's CPU time (``time.process_time``) per request, the median of the rounds. CPU
    time, not wall time, so other processes on a shared machine do not count in the figure;
  * over HTTP: each app under uvicorn (one worker) loaded by ``wrk`` on 127.0.0.1, when wrk is
    installed (Debian: ``apt-get install wrk``), in interleaved rounds.

    uv run python benchmarks/middleware_overhead.py [--requests 5000 --rounds 7 --http-seconds 5]
    uv run python benchmarks/middleware_overhead.py --json   # in process only, one JSON object:
        {"bare_us": ..., "stack_us": ..., "peer_us": ...}   # microseconds per request
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

Scope = dict[str, Any]
Message = dict[str, Any]
ASGI = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

STACKS = {
    "a": "bare FastAPI",
    "b": "OmniStack create_app (production, JSON logs, metrics)",
    "c": "instrumentator + correlation-id + BaseHTTPMiddleware log",
}


def _devnull() -> Any:
    return open(os.devnull, "w")  # noqa: PTH123 - lives as long as the process


def _clear_logging() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def _devnull_logging(request_id_filter: logging.Filter) -> None:
    """The peer stack's logging: a stream handler with the same JSON formatter as ours."""
    from omnistack_core.observability.logs import JsonFormatter

    _clear_logging()
    root = logging.getLogger()
    handler = logging.StreamHandler(_devnull())
    handler.setFormatter(JsonFormatter("bench", "production"))
    handler.addFilter(request_id_filter)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _add_endpoint(app: FastAPI) -> FastAPI:
    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


def build(stack: str) -> FastAPI:
    """The app of one stack, with its logging installed (logging is process-wide)."""
    app, install_logging = build_with_logging(stack)
    install_logging()
    return app


def build_with_logging(stack: str) -> tuple[FastAPI, Callable[[], None]]:
    """The app of one stack and the function that installs the logging it runs with."""
    if stack == "a":
        return _add_endpoint(FastAPI()), _clear_logging
    if stack == "b":
        from omnistack_core import create_app, load_settings
        from omnistack_core.observability import configure_logging

        # What a deployed service runs with; no .env file, no variable of this shell.
        settings = load_settings(
            env_file=None,
            environment="production",
            secret_key="b" * 40,
            database_url="postgresql://bench@127.0.0.1:5432/bench",
            log_format="json",
            log_level="INFO",
            metrics_enabled=True,
        )

        def install_full() -> None:
            _clear_logging()
            configure_logging(settings, stream=_devnull())

        return _add_endpoint(create_app(settings)), install_full
    if stack == "c":
        from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware
        from prometheus_client import CollectorRegistry
        from prometheus_fastapi_instrumentator import Instrumentator
        from starlette.middleware.base import BaseHTTPMiddleware

        access = logging.getLogger("bench.access")

        async def log_requests(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            response = await call_next(request)
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            route = getattr(request.scope.get("route"), "path", "<unmatched>")
            access.info(
                "%s %s %d %.2fms",
                request.method,
                request.url.path,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.url.path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                    "client": request.client.host if request.client else None,
                },
            )
            return response

        app = FastAPI()
        app.add_middleware(BaseHTTPMiddleware, dispatch=log_requests)
        app.add_middleware(CorrelationIdMiddleware)
        Instrumentator(registry=CollectorRegistry()).instrument(app)
        return _add_endpoint(app), lambda: _devnull_logging(
            CorrelationIdFilter(name="request_id", uuid_length=32)
        )
    raise SystemExit(f"unknown stack {stack!r}")


# In process ---------------------------------------------------------------------------------


async def _per_request_seconds(app: ASGI, requests: int) -> float:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ping",
        "raw_path": b"/ping",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.process_time() - started) / requests


def in_process(requests: int, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds per request of each stack, all in this process, in interleaved rounds: the
    median of each stack's rounds, and what each adds to bare FastAPI.

    What a stack adds is the median, over the passes, of its round's cost less bare FastAPI's
    round of the same pass: a shared machine that slows down for a while slows both rounds of
    a pass, so the difference holds where two medians taken from different rounds would not.
    """
    built = {stack: build_with_logging(stack) for stack in STACKS}
    samples: dict[str, list[float]] = {stack: [] for stack in STACKS}

    async def run() -> None:
        for app, install_logging in built.values():  # warm up: route tables, label children
            install_logging()
            await _per_request_seconds(app, 500)  # type: ignore[arg-type]
        for _ in range(rounds):
            for stack, (app, install_logging) in built.items():
                install_logging()
                samples[stack].append(await _per_request_seconds(app, requests))  # type: ignore[arg-type]

    asyncio.run(run())
    medians = {stack: statistics.median(values) for stack, values in samples.items()}
    added = {
        stack: statistics.median(
            mine - bare for mine, bare in zip(values, samples["a"], strict=True)
        )
        for stack, values in samples.items()
    }
    return medians, added


# Over HTTP ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(stack: str, port: int) -> subprocess.Popen[bytes]:
    here = str(Path(__file__).parent)
    code = (
        f"import sys, uvicorn; sys.path.insert(0, {here!r}); import middleware_overhead as m; "
        f"uvicorn.run(m.build({stack!r}), host='127.0.0.1', port={port}, log_level='warning', "
        "access_log=False, log_config=None)"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"stack {stack} did not start")


def _wrk(port: int, seconds: int) -> float:
    output = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", f"http://127.0.0.1:{port}/ping"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk failed:\n{output}")
    return float(match.group(1))


def over_http(seconds: int, rounds: int) -> dict[str, float]:
    """Median requests per second of each stack under uvicorn, loaded by wrk."""
    samples: dict[str, list[float]] = {stack: [] for stack in STACKS}
    for _ in range(rounds):
        for stack in STACKS:
            port = _free_port()
            server = _serve(stack, port)
            try:
                _wrk(port, 1)  # warm up
                samples[stack].append(_wrk(port, seconds))
            finally:
                server.terminate()
                server.wait(timeout=10)
    return {stack: statistics.median(values) for stack, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="requests per in-process round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--http-seconds", type=int, default=5, help="0 skips the HTTP runs")
    parser.add_argument("--http-rounds", type=int, default=2)
    parser.add_argument(
        "--json",
        action="store_true",
        help="in process only; print one JSON object of microseconds per request "
        '({"bare_us", "stack_us", "peer_us", "stack_added_us", "peer_added_us"}) and nothing '
        "else on standard output",
    )
    arguments = parser.parse_args()

    if arguments.json:
        # Standard output holds the JSON object alone; anything logged while apps are built
        # goes to standard error.
        with contextlib.redirect_stdout(sys.stderr):
            per_request, added = in_process(arguments.requests, arguments.rounds)
    else:
        per_request, added = in_process(arguments.requests, arguments.rounds)
    if arguments.json:
        figures = {
            "bare_us": per_request["a"],
            "stack_us": per_request["b"],
            "peer_us": per_request["c"],
            "stack_added_us": added["b"],
            "peer_added_us": added["c"],
        }
        print(json.dumps({key: round(value * 1e6, 2) for key, value in figures.items()}))
        return
    bare = per_request["a"]
    print(f"In process: CPU time, median of {arguments.rounds} rounds x {arguments.requests}")
    print("  (added: median over rounds of the round's cost less bare FastAPI's paired round)")
    for stack, seconds in per_request.items():
        print(
            f"  ({stack}) {STACKS[stack]:<58} {seconds * 1e6:7.1f} us"
            f"  +{added[stack] * 1e6:6.1f} us"
        )
    added_b = added["b"] * 1e6
    added_c = added["c"] * 1e6
    print(f"  throughput b/a: {bare / per_request['b']:.2f}")
    print(f"  throughput b/c: {per_request['c'] / per_request['b']:.2f}")
    print(f"  overhead c/b: {added_c / added_b:.1f}x ({added_b:.1f} us against {added_c:.1f} us)")

    if arguments.http_seconds and shutil.which("wrk"):
        rates = over_http(arguments.http_seconds, arguments.http_rounds)
        rounds, seconds_each = arguments.http_rounds, arguments.http_seconds
        print(f"\nOver HTTP: uvicorn, 1 worker, wrk -t1 -c16, median of {rounds} x {seconds_each}s")
        for stack, rate in rates.items():
            print(f"  ({stack}) {STACKS[stack]:<58} {rate:7.0f} req/s  {1e6 / rate:6.1f} us")
        for ratio in ("b/a", "b/c"):
            top, bottom = ratio.split("/")
            print(f"  throughput {ratio}: {rates[top] / rates[bottom]:.2f}")
        added_b = 1e6 / rates["b"] - 1e6 / rates["a"]
        added_c = 1e6 / rates["c"] - 1e6 / rates["a"]
        print(f"  added per request: OmniStack {added_b:.1f} us, peer stack {added_c:.1f} us")
    elif arguments.http_seconds:
        print("\nOver HTTP: skipped, wrk is not installed (Debian: apt-get install wrk)")


if __name__ == "__main__":
    main()
