"""Cold import-and-build time of an OmniStack app against a bare FastAPI app.

Each sample is a fresh interpreter, so nothing is cached in memory; the two cases alternate
so that machine noise falls on both. Printed: the median of each and their ratio, then for
reference an app with every module (what a generated "everything" service builds) with its
peak memory. Bytecode is written on the warm-up run even when the shell sets
PYTHONDONTWRITEBYTECODE: the image compiles it at build time, so no start compiles sources.

    uv run python benchmarks/import_time.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

TIMED = """
import resource
import time
started = time.perf_counter()
{body}
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CASES = {
    "bare FastAPI: import fastapi; FastAPI()": "import fastapi\nfastapi.FastAPI()",
    "OmniStack: import omnistack_core; create_app()": (
        "import omnistack_core\nomnistack_core.create_app()"
    ),
}

# Not part of the ratio: every module installed, as in a generated service that has them all.
EVERY_MODULE = """
import omnistack_core
from omnistack_core.ai import AIModule
from omnistack_core.auth import AuthModule
from omnistack_core.billing import BillingModule
from omnistack_core.console import ConsoleModule
from omnistack_core.email import EmailModule
from omnistack_core.jobs import JobsModule
omnistack_core.create_app(modules=[
    AuthModule(), EmailModule(), BillingModule(), AIModule(), ConsoleModule(), JobsModule(jobs=[])
])
"""

# Not part of the ratio: what the app then does at start-up (SQLAlchemy, the SQLite engine).
STARTUP = """
import asyncio
import omnistack_core
app = omnistack_core.create_app()

async def start():
    async with app.router.lifespan_context(app):
        pass

asyncio.run(start())
"""


# Not part of the ratio: what `omnistack serve` loads before it builds the app (the command
# table; a WEB_CONCURRENCY supervisor holds little more), with its peak memory.
CLI = """
from omnistack_core.cli import _parser
_parser("serve")
"""


def sample(body: str, directory: str) -> tuple[float, float]:
    """Seconds taken and the peak memory in MiB of one fresh interpreter running ``body``."""
    unset = {"DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    result = subprocess.run(
        [sys.executable, "-c", TIMED.format(body=body)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, kib = result.stdout.split()
    return float(seconds), int(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    startup: list[float] = []
    every: list[tuple[float, float]] = []
    cli: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as directory:
        for body in [*CASES.values(), EVERY_MODULE, STARTUP, CLI]:  # write the bytecode once
            sample(body, directory)
        for _ in range(runs):
            for name, body in CASES.items():
                samples[name].append(sample(body, directory)[0])
            startup.append(sample(STARTUP, directory)[0])
            every.append(sample(EVERY_MODULE, directory))
            cli.append(sample(CLI, directory))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"median of {runs} cold runs each")
    for name, median in medians.items():
        print(f"  {name:<50} {median * 1000:7.1f} ms")
    bare, ours = medians.values()
    print(f"  ratio OmniStack / bare FastAPI: {ours / bare:.2f}x (aim: <= 1.3x)")
    print(
        f"  for reference, import + create_app + start-up (SQLite engine): "
        f"{statistics.median(startup) * 1000:.1f} ms"
    )
    print(
        f"  for reference, import + create_app with every module: "
        f"{statistics.median(seconds for seconds, _ in every) * 1000:.1f} ms, "
        f"peak memory {statistics.median(mib for _, mib in every):.1f} MiB"
    )
    print(
        f"  for reference, the omnistack command up to serve building the app: "
        f"{statistics.median(seconds for seconds, _ in cli) * 1000:.1f} ms, "
        f"peak memory {statistics.median(mib for _, mib in cli):.1f} MiB"
    )


if __name__ == "__main__":
    main()
