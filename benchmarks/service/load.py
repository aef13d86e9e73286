"""wrk, driven by one Lua script: rotating bearer tokens, and every non-2xx counted.

The same script runs for every target and route, tokens or not, so its cost (wrk's Lua hooks
and parsing every response) is the same on each side of a ratio.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.service.targets import Route

WRK = "/usr/bin/wrk"

SCRIPT = r"""
-- wrk -s this.lua URL -- TOKENS_FILE|- METHOD PATH BODY|-
local tokens = {}
local next_token = 0
local method, path, body
local threads = {}
non2xx = 0  -- a global: done() reads it from each thread

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if args[1] ~= "-" then
    for line in io.lines(args[1]) do
      if line ~= "" then tokens[#tokens + 1] = line end
    end
  end
  method, path = args[2], args[3]
  if args[4] ~= "-" then body = args[4] end
end

function request()
  local headers = {}
  if #tokens > 0 then
    next_token = next_token % #tokens + 1
    headers["Authorization"] = "Bearer " .. tokens[next_token]
  end
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non2xx") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, bad, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    timeouts: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def valid(self) -> bool:
        """Every response a 2xx, and no socket error or timeout."""
        return self.non2xx == 0 and self.socket_errors == 0 and self.timeouts == 0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "rate": round(self.rate, 1), "valid": self.valid}


class Wrk:
    """Runs wrk against a route; files (script, token lists) live in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.script = directory / "bench.lua"
        self.script.write_text(SCRIPT)
        self._token_files: dict[tuple[str, ...], Path] = {}

    def _tokens_file(self, tokens: tuple[str, ...]) -> str:
        if not tokens:
            return "-"
        if tokens not in self._token_files:
            path = self.directory / f"tokens-{len(self._token_files)}.txt"
            path.write_text("\n".join(tokens) + "\n")
            self._token_files[tokens] = path
        return str(self._token_files[tokens])

    def run(self, base: str, route: Route, *, seconds: float, connections: int) -> Result:
        """One bounded wrk run: one thread, ``connections`` connections, ``seconds`` long."""
        command = [
            WRK,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(self.script),
            base + route.path,
            "--",
            self._tokens_file(route.tokens),
            route.method,
            route.path,
            route.body or "-",
        ]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        line = next(
            (line for line in completed.stdout.splitlines() if line.startswith("BENCH ")), None
        )
        if completed.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed on {base}{route.path}:\n{completed.stderr}")
        figures = json.loads(line.removeprefix("BENCH "))
        return Result(
            requests=figures["requests"],
            seconds=figures["duration_us"] / 1e6,
            non2xx=figures["non2xx"],
            socket_errors=figures["socket_errors"],
            timeouts=figures["timeouts"],
            p50_ms=figures["p50_us"] / 1000,
            p99_ms=figures["p99_us"] / 1000,
        )
