"""Template speed: ``copier copy`` of the full answer set, and the generated service's cold start.

Cold start is process start to the first 200 from ``/api/v1/public/health``, under uvicorn,
for the generated service (every module the template offers, Postgres-less: SQLite) against
a bare FastAPI app with the same route started the same way from the same virtualenv, and,
for context, a FastAPI app with one SQLAlchemy model and engine (what any service with a
database imports). Runs alternate; medians are printed with the ratios.

    uv run python benchmarks/template.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.template.rendering import ANSWER_SETS, REPOSITORY, render, snapshot

BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v1/public/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
"""


# For context, not the aim: what any FastAPI service with a SQLAlchemy model pays to start.
DATABASE_APP = """
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import String
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


@asynccontextmanager
async def lifespan(app: FastAPI):
    engine = create_async_engine("sqlite+aiosqlite:///./bench.db")
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/api/v1/public/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cold_start(project: Path, app: str, env: dict[str, str]) -> float:
    """Seconds from starting uvicorn to the first 200 from the health path."""
    port = free_port()
    uvicorn = project / ".venv" / "bin" / "uvicorn"
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(uvicorn), app, "--port", str(port), "--log-level", "warning"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if (
                        client.get(f"http://127.0.0.1:{port}/api/v1/public/health").status_code
                        == 200
                    ):
                        return time.perf_counter() - started
                except httpx.TransportError:
                    time.sleep(0.005)
                if server.poll() is not None:
                    raise SystemExit(f"{app} exited with {server.returncode}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    answers = {
        **ANSWER_SETS["everything-supabase"],
        "omnistack_core_version": f"@ {REPOSITORY.as_uri()}",
    }
    with tempfile.TemporaryDirectory() as directory:
        workspace = Path(directory)
        template = snapshot(workspace / "template")
        generation = []
        for run in range(runs):
            started = time.perf_counter()
            project = render(template, workspace / f"service-{run}", answers)
            generation.append(time.perf_counter() - started)
        subprocess.run(["uv", "sync", "--quiet"], cwd=project, check=True)
        (project / "bare_app.py").write_text(BARE_APP)
        (project / "database_app.py").write_text(DATABASE_APP)
        keep = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
        env = {**keep, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING"}
        service, bare, database = [], [], []
        for _ in range(runs):
            service.append(cold_start(project, "app.main:app", env))
            bare.append(cold_start(project, "bare_app:app", env))
            database.append(cold_start(project, "database_app:app", env))

    print(f"median of {runs} runs each")
    print(f"  copier copy, full answer set:    {statistics.median(generation):6.2f} s (aim: < 3 s)")
    print(f"  cold start, bare FastAPI:        {statistics.median(bare):6.2f} s")
    print(f"  cold start, generated service:   {statistics.median(service):6.2f} s")
    ratio = statistics.median(service) / statistics.median(bare)
    print(f"  ratio service / bare: {ratio:.2f}x (aim: <= 1.5x)")
    floor = statistics.median(database)
    print(f"  for context, FastAPI + one SQLAlchemy model: {floor:.2f} s")
    print(f"  ratio service / FastAPI + SQLAlchemy: {statistics.median(service) / floor:.2f}x")


if __name__ == "__main__":
    main()
