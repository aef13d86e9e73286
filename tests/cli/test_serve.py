"""``omnistack serve`` against raw-socket abuse: every bound cuts the client off, none the service.

The server runs as a real process on a free port with small bounds (1 s), so each test
ends in seconds; a client-side timeout ten times the bound tells "closed by the server"
from "held open". The bounds are tested on both of uvicorn's parsers: httptools, served
when it imports, and h11, served when it does not (made unimportable in the server).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path

import pytest

from omnistack_core.testing import wait_until

pytest.importorskip("uvicorn", reason="omnistack serve runs uvicorn")

HEALTH = b"GET /api/v1/public/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
MAX_HEADER_BYTES = 65_536
MAX_CONNECTIONS = 50
# Long enough that only the server's bound (1 s) can end the wait first.
CLIENT_PATIENCE = 10.0

APP = """
import asyncio
import os
from pathlib import Path

from fastapi import Request

from omnistack_core import create_app

app = create_app()


@app.get("/client")
async def client(request: Request) -> dict[str, str]:
    return {"host": request.client.host if request.client else ""}


@app.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


# Answers /protocol with the uvicorn module whose request cycle gave the app its receive.
class ReportProtocol:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/protocol":
            await self.app(scope, receive, send)
            return
        body = type(receive.__self__).__module__.encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


app.add_middleware(ReportProtocol)


@app.get("/slow")
async def slow() -> dict[str, str]:
    Path("slow-started").touch()  # in the server's directory, for the test to wait for
    await asyncio.sleep(1)
    return {"finished": "yes"}
"""


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_PATIENCE)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes; what came before a reset, if it resets."""
    received = b""
    with suppress(ConnectionResetError):
        while chunk := connection.recv(65_536):
            received += chunk
    return received


def _exchange(port: int, request: bytes) -> bytes:
    with closing(_connect(port)) as connection:
        connection.sendall(request)
        return _read_all(connection)


def _closed_by_server(connection: socket.socket) -> bool:
    """Whether the server closed ``connection`` (EOF or reset) within the client's patience."""
    try:
        return connection.recv(65_536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _healthy(port: int) -> bool:
    return _exchange(port, HEALTH).startswith(b"HTTP/1.1 200")


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


PROTOCOLS = ["httptools", "h11"]

NEEDS_METRICS = pytest.mark.skipif(
    importlib.util.find_spec("prometheus_client") is None,
    reason="needs the observability extra (the workers' metrics)",
)


def _serve(
    directory: Path, *, protocol: str = "httptools", start_timeout: float = 30, **variables: str
) -> Iterator[Server]:
    (directory / "service_app.py").write_text(textwrap.dedent(APP))
    python_path = os.environ.get("PYTHONPATH", "")
    if protocol == "h11":
        shadow = directory / "without-httptools"
        shadow.mkdir(exist_ok=True)
        (shadow / "httptools.py").write_text('raise ImportError("made unimportable by the test")\n')
        python_path = os.pathsep.join(filter(None, [str(shadow), python_path]))
    port = _free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(
            ("DATABASE_", "REDIS_", "SERVER_", "FORWARDED_", "ENVIRONMENT", "WEB_", "PROMETHEUS_")
        )
    }
    environment |= {
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory}/serve.db",
        "PORT": str(port),
        "SERVER_HEADER_TIMEOUT_SECONDS": "1",
        "SERVER_BODY_TIMEOUT_SECONDS": "1",
        "SERVER_KEEPALIVE_SECONDS": "1",
        "SERVER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": python_path,
        **variables,
    }
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "omnistack_core.cli", "serve", "--app", "service_app:app"],
        cwd=directory,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"omnistack serve exited: {(directory / 'serve.log').read_text()}")
        with suppress(OSError):
            return _healthy(port)
        return False

    try:
        wait_until(
            healthy,
            timeout=start_timeout,
            interval=0.2,
            message=lambda: (
                f"omnistack serve did not start: {(directory / 'serve.log').read_text()}"
            ),
        )
        yield Server(process, port, directory / "serve.log")
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module", params=PROTOCOLS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    protocol: str = request.param
    yield from _serve(tmp_path_factory.mktemp(f"serve-{protocol}"), protocol=protocol)


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    chosen: str = request.param
    return chosen


def test_httptools_is_served_when_it_imports_and_h11_when_not(tmp_path: Path) -> None:
    served = {}
    for protocol in PROTOCOLS:
        directory = tmp_path / f"served-{protocol}"
        directory.mkdir()
        for server in _serve(directory, protocol=protocol):
            answer = _exchange(server.port, HEALTH.replace(b"/api/v1/public/health", b"/protocol"))
            served[protocol] = answer.rsplit(b"\r\n", 1)[1]

    # Without httptools installed (uvicorn without its standard extra), h11 serves both.
    available = importlib.util.find_spec("httptools") is not None
    assert served == {
        "httptools": b"uvicorn.protocols.http." + (b"httptools_impl" if available else b"h11_impl"),
        "h11": b"uvicorn.protocols.http.h11_impl",
    }


ECHO = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello"


def test_pipelined_requests_are_answered_in_order_on_one_connection(server: Server) -> None:
    # Both in one write: the server reads the second before it has answered the first.
    longer = ECHO.replace(b"hello", b"goodbye").replace(b"5", b"7")
    answer = _exchange(server.port, ECHO + longer + HEALTH)

    assert answer.count(b"HTTP/1.1 200") == 3
    assert answer.index(b'{"size":5}') < answer.index(b'{"size":7}') < answer.index(b'"status"')


def test_a_connection_is_kept_alive_between_requests(server: Server) -> None:
    with closing(_connect(server.port)) as connection:
        answers = []
        for _ in range(3):
            connection.sendall(ECHO)
            received = b""
            while not received.endswith(b'{"size":5}'):
                chunk = connection.recv(65_536)
                assert chunk, "the server closed a kept-alive connection"
                received += chunk
            answers.append(received)

    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)


def test_a_header_just_over_the_bound_gets_431_problem_json(server: Server) -> None:
    padding = b"a" * MAX_HEADER_BYTES
    answer = _exchange(
        server.port, HEALTH.replace(b"Host:", b"X-Padding: " + padding + b"\r\nHost:")
    )

    assert answer.startswith(b"HTTP/1.1 431")
    assert b"application/problem+json" in answer
    assert _healthy(server.port)


def test_a_header_over_the_bound_after_a_pipelined_request_gets_431_after_its_answer(
    server: Server,
) -> None:
    kept_alive = HEALTH.replace(b"Connection: close\r\n", b"")
    oversized = kept_alive.replace(
        b"Host:", b"X-Padding: " + b"a" * MAX_HEADER_BYTES + b"\r\nHost:"
    )

    answer = _exchange(server.port, kept_alive + oversized)

    assert re.findall(rb"HTTP/1\.1 \d+", answer) == [b"HTTP/1.1 200", b"HTTP/1.1 431"]
    assert answer.endswith(b'bytes"}')


def test_oversized_headers_pending_at_once_are_cut_off_and_memory_stays_flat(
    server: Server,
) -> None:
    before = server.rss_kib()
    # Eight headers of up to 4 MB each, fed a chunk at a time in turn, so all are pending at
    # once (plain uvicorn buffered every one of them whole).
    clients = [_connect(server.port) for _ in range(8)]
    open_clients = list(clients)
    try:
        for client in clients:
            client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ")
        for _ in range(64):
            for client in list(open_clients):
                try:
                    client.sendall(b"b" * 65_536)
                except (BrokenPipeError, ConnectionResetError):
                    open_clients.remove(client)
        grown = server.rss_kib() - before
        answers = [_read_all(client) for client in clients]
    finally:
        for client in clients:
            client.close()

    assert open_clients == []  # every one was cut off before its 4 MB were sent
    assert all(not answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert grown < 20 * 1024
    assert _healthy(server.port)


def test_a_header_sent_a_line_at_a_time_is_cut_off(server: Server) -> None:
    with closing(_connect(server.port)) as connection:
        connection.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\n")
        cut_off = False
        for line in range(20):  # at 0.3 s a line: 6 s of header, six times the bound
            try:
                connection.sendall(f"X-Line-{line}: slow\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True
                break
            time.sleep(0.3)
        connection.settimeout(0.1)
        cut_off = cut_off or _closed_by_server(connection)

    assert cut_off
    assert _healthy(server.port)


def test_a_body_sent_a_byte_at_a_time_is_cut_off(server: Server) -> None:
    with closing(_connect(server.port)) as connection:
        connection.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 20\r\n\r\n")
        sent = 0
        with suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(20):  # 0.3 s a byte: the body would take 6 s
                connection.sendall(b"x")
                sent += 1
                time.sleep(0.3)
        answer = _read_all(connection)

    assert not answer.startswith(b"HTTP/1.1 200")
    assert sent < 20
    assert _healthy(server.port)
    # The app saw its client leave mid-body: no server error logged or counted for it.
    assert "Unhandled error" not in server.log.read_text()


def test_a_body_shorter_than_its_content_length_is_cut_off(server: Server) -> None:
    with closing(_connect(server.port)) as connection:
        connection.sendall(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
        )

        assert _closed_by_server(connection)
    assert _healthy(server.port)


def test_idle_connections_over_the_limit_get_503_and_all_are_closed(server: Server) -> None:
    idle = [_connect(server.port) for _ in range(200)]
    try:
        over_the_limit = _exchange(server.port, HEALTH)
        closed = [_closed_by_server(connection) for connection in idle]
    finally:
        for connection in idle:
            connection.close()

    assert over_the_limit.startswith(b"HTTP/1.1 503")
    assert all(closed)
    assert _healthy(server.port)


@pytest.mark.parametrize(
    ("trusted", "header", "seen"),
    [
        ("", "", "127.0.0.1"),
        ("10.0.0.0/8", "", "127.0.0.1"),
        ("127.0.0.1", "", "1.2.3.4"),
        ("", "Fly-Client-IP", "127.0.0.1"),
        ("127.0.0.0/8", "Fly-Client-IP", "5.6.7.8"),
    ],
    ids=[
        "nobody trusted",
        "another network trusted",
        "the peer trusted",
        "the platform header from an untrusted peer",
        "the platform header from a trusted peer",
    ],
)
def test_the_client_address_moves_only_on_a_trusted_peers_word(
    tmp_path: Path, protocol: str, trusted: str, header: str, seen: str
) -> None:
    spoofed = HEALTH.replace(b"/api/v1/public/health", b"/client").replace(
        b"Host:", b"X-Forwarded-For: 1.2.3.4\r\nFly-Client-IP: 5.6.7.8\r\nHost:"
    )
    for server in _serve(
        tmp_path, protocol=protocol, FORWARDED_ALLOW_IPS=trusted, FORWARDED_CLIENT_IP_HEADER=header
    ):
        answer = _exchange(server.port, spoofed)

        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(f'{{"host":"{seen}"}}'.encode())


def test_a_request_in_flight_finishes_after_sigterm(tmp_path: Path, protocol: str) -> None:
    for server in _serve(tmp_path, protocol=protocol, SHUTDOWN_GRACE_SECONDS="10"):
        with closing(_connect(server.port)) as connection:
            connection.sendall(HEALTH.replace(b"/api/v1/public/health", b"/slow"))
            wait_until(
                (server.log.parent / "slow-started").exists,
                timeout=10,
                message="the request never reached the app",
            )
            server.process.send_signal(signal.SIGTERM)
            answer = _read_all(connection)
        server.process.wait(timeout=15)

        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b'{"finished":"yes"}')
        # uvicorn raises the signal again once it has shut down cleanly.
        assert server.process.returncode in (0, -signal.SIGTERM)


def test_a_bad_bound_is_reported_by_its_name_and_nothing_serves(tmp_path: Path) -> None:
    (tmp_path / "service_app.py").write_text(textwrap.dedent(APP))
    environment = {
        **os.environ,
        "ENVIRONMENT": "development",
        "SERVER_MAX_HEADER_BYTES": "10",
        "FORWARDED_ALLOW_IPS": "the-proxy",
    }

    result = subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "serve", "--app", "service_app:app"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "SERVER_MAX_HEADER_BYTES" in result.stderr
    assert "FORWARDED_ALLOW_IPS: 'the-proxy' is not an IP address or network" in result.stderr


def _children(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


def _answering_pids(port: int, requests: int) -> list[int]:
    """The pid that answered each of ``requests`` requests to ``/pid``, one connection each."""
    pids = []
    for _ in range(requests):
        answer = _exchange(port, HEALTH.replace(b"/api/v1/public/health", b"/pid"))
        assert answer.startswith(b"HTTP/1.1 200"), answer
        pids.append(int(answer.rsplit(b":", 1)[1].rstrip(b"}")))
    return pids


def _until_both_workers_answer(port: int) -> list[int]:
    """The pids that answered requests to ``/pid``, sent until two workers have answered."""
    answered: list[int] = []

    def both_answered() -> bool:
        # The kernel hands each connection to whichever worker accepts it first.
        answered.extend(_answering_pids(port, 10))
        return len(set(answered)) == 2

    # The first worker up serves alone until the second has built its app.
    wait_until(both_answered, timeout=90, message=lambda: f"only {set(answered)} answered")
    return answered


def _requests_counted(port: int, route: str) -> float:
    """``http_requests_total`` of ``route`` in one scrape, over its statuses and methods."""
    answer = _exchange(port, HEALTH.replace(b"/api/v1/public/health", b"/api/v1/public/metrics"))
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in answer.decode().splitlines()
        if line.startswith("http_requests_total{") and f'route="{route}"' in line
    )


@NEEDS_METRICS
def test_two_workers_serve_and_the_metrics_sum_both(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"a previous run's")  # would break every scrape
    # A checker process builds the app before the workers do: twice a start's work.
    for server in _serve(
        tmp_path, start_timeout=90, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics)
    ):
        answered = _until_both_workers_answer(server.port)
        answered.extend(_answering_pids(server.port, 20))
        # Each scrape is answered by either worker; every one must count all the requests.
        scrapes = [_requests_counted(server.port, "/pid") for _ in range(20)]

        assert set(answered) <= _children(server.process.pid)
        assert server.process.pid not in answered
        assert scrapes == [len(answered)] * 20
        assert not (metrics / "counter_1.db").exists()


def test_sigterm_drains_every_worker_and_stops_them_all(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    for server in _serve(
        tmp_path,
        start_timeout=90,
        WEB_CONCURRENCY="2",
        SHUTDOWN_GRACE_SECONDS="10",
        TMPDIR=str(temporary),
    ):
        workers = set(_until_both_workers_answer(server.port))
        with closing(_connect(server.port)) as connection:
            connection.sendall(HEALTH.replace(b"/api/v1/public/health", b"/slow"))
            wait_until(
                (server.log.parent / "slow-started").exists,
                timeout=10,
                message="the request never reached the app",
            )
            server.process.send_signal(signal.SIGTERM)
            answer = _read_all(connection)
        server.process.wait(timeout=15)

        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b'{"finished":"yes"}')
        assert server.process.returncode == 0
        assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []
        # The metrics directory serve made for the workers went with them.
        assert list(temporary.glob("omnistack-metrics-*")) == []


BROKEN_APP = """
from omnistack_core import create_app, load_settings

app = create_app(load_settings(server_max_header_bytes=10))
"""


@pytest.mark.parametrize("workers", ["0", "abc"])
def test_a_bad_worker_count_is_reported_by_its_name_before_any_worker(
    tmp_path: Path, workers: str
) -> None:
    (tmp_path / "service_app.py").write_text(textwrap.dedent(APP))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"stale")
    environment = {
        **os.environ,
        "ENVIRONMENT": "development",
        "WEB_CONCURRENCY": workers,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }

    result = subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "serve", "--app", "service_app:app"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "WEB_CONCURRENCY" in result.stderr
    assert "Started" not in result.stderr
    # serve never got as far as preparing the workers' metrics directory.
    assert (metrics / "counter_1.db").exists()


def test_an_app_that_cannot_start_is_reported_once_and_no_worker_starts(tmp_path: Path) -> None:
    (tmp_path / "service_app.py").write_text(textwrap.dedent(BROKEN_APP))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"stale")
    environment = {
        **os.environ,
        "ENVIRONMENT": "development",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }

    result = subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "serve", "--app", "service_app:app"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    # One report, the checker's: a worker would have printed its own.
    assert result.stderr.count("SERVER_MAX_HEADER_BYTES") == 1, result.stderr
    assert (metrics / "counter_1.db").exists()


async def _nodelay_of_a_connection_accepted_on(listener: socket.socket) -> int:
    """TCP_NODELAY as asyncio leaves it on a connection it accepts on ``listener``."""
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await loop.create_server(Probe, sock=listener)
    _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
    try:
        return await asyncio.wait_for(seen, timeout=10)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_the_workers_connections_send_without_waiting_for_acks() -> None:
    from uvicorn import Config  # noqa: PLC0415 - after the importorskip

    from omnistack_core.cli.serve_workers import listening_socket  # noqa: PLC0415

    listener = listening_socket(Config("service_app:app", host="127.0.0.1", port=0))

    # With Nagle's algorithm on, each response's body waits for the client's delayed ACK.
    assert asyncio.run(_nodelay_of_a_connection_accepted_on(listener)) == 1


@NEEDS_METRICS
def test_a_dead_workers_requests_still_count_and_its_live_gauges_go(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    for server in _serve(
        tmp_path, start_timeout=90, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics)
    ):
        _kill_a_worker_and_watch_the_metrics(server, metrics)


def _kill_a_worker_and_watch_the_metrics(server: Server, metrics: Path) -> None:
    answered = _until_both_workers_answer(server.port)
    victim = answered[0]
    live = metrics / f"gauge_livesum_{victim}.db"
    assert live.exists()  # http_requests_in_progress, written as it served

    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not live.exists(), timeout=30, message="the gauge outlived its worker")
    # uvicorn starts a worker in its place; the dead one's counts stay in the sum.
    replacement = wait_until(
        lambda: set(_answering_pids(server.port, 10)) - set(answered),
        timeout=90,
        message="no worker replaced the dead one",
    )

    assert (metrics / f"counter_{victim}.db").exists()
    assert victim not in replacement
    assert _requests_counted(server.port, "/pid") >= len(answered)


# Builds for the first import only (serve's check); every worker after it cannot start.
APP_ONLY_ONCE = """
from pathlib import Path

from omnistack_core import create_app, load_settings

if Path("built").exists():
    app = create_app(load_settings(server_max_header_bytes=10))
else:
    Path("built").touch()
    app = create_app()
"""


def test_workers_that_cannot_start_stop_serve_with_status_1(tmp_path: Path) -> None:
    (tmp_path / "service_app.py").write_text(textwrap.dedent(APP_ONLY_ONCE))
    environment = {**os.environ, "ENVIRONMENT": "development", "WEB_CONCURRENCY": "2"}

    result = subprocess.run(
        [sys.executable, "-m", "omnistack_core.cli", "serve", "--app", "service_app:app"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "SERVER_MAX_HEADER_BYTES" in result.stderr
