"""Cold import-and-build time of an OmniStack app against a bare FastAPI app.

Each sample is a fresh interpreter, so nothing is cached in memory; the two cases alternate
so that machine noise falls on both. Printed: the median of each and their ratio.

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
import time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""

CASES = {
    "bare FastAPI: import fastapi; FastAPI()": "import fastapi\nfastapi.FastAPI()",
    "OmniStack: import omnistack_core; create_app()": (
        "import omnistack_core\nomnistack_core.create_app()"
    ),
}

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


def sample(body: str, directory: str) -> float:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", TIMED.format(body=body)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    startup: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for body in CASES.values():  # warm the bytecode caches once
            sample(body, directory)
        for _ in range(runs):
            for name, body in CASES.items():
                samples[name].append(sample(body, directory))
            startup.append(sample(STARTUP, directory))

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


if __name__ == "__main__":
    main()
