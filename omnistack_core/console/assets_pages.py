"""The console's stylesheet and script, served from the package: no CDN, no build step."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from omnistack_core.console.access import PREFIX, ConsoleRoute

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

_ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}


@cache
def _asset(name: str) -> bytes:
    return files("omnistack_core.console").joinpath("static", name).read_bytes()


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    """One of the console's assets (a fixed list: nothing else in the package is served)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        return Response(status_code=404)
    return Response(
        _asset(name), media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
    )
