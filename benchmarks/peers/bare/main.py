"""Bare FastAPI with one route and nothing else: no middleware, no settings, no database.

uvicorn benchmarks.peers.bare.main:app --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v1/public/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
