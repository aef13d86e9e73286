from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from omnistack_core import create_app, load_settings
from omnistack_core.observability import ObservabilityMiddleware
from omnistack_core.request_context import current_request_id
from omnistack_core.testing import app_client

HEX_ID = r"[0-9a-f]{32}"


def build_app() -> FastAPI:
    app = create_app(load_settings(log_format="json"))

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, object]:
        logging.getLogger("shop.items").info("reading item", extra={"item_id": item_id})
        return {"item_id": item_id, "request_id": current_request_id()}

    @app.get("/sync")
    def sync_endpoint() -> dict[str, object]:
        # Runs in the thread pool: the id must follow the request there too.
        return {"request_id": current_request_id()}

    return app


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def test_a_well_formed_incoming_id_is_used_and_returned() -> None:
    async with app_client(build_app()) as client:
        response = await client.get("/items/3", headers={"X-Request-ID": "trace-abc.123"})

    assert response.headers["x-request-id"] == "trace-abc.123"
    assert response.json()["request_id"] == "trace-abc.123"


async def test_without_an_incoming_id_a_fresh_one_is_made_per_request() -> None:
    async with app_client(build_app()) as client:
        first = await client.get("/items/1")
        second = await client.get("/items/1")

    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    for response in (first, second):
        assert len(response.headers["x-request-id"]) == 32


async def test_the_id_reaches_sync_endpoints_in_the_thread_pool() -> None:
    async with app_client(build_app()) as client:
        response = await client.get("/sync", headers={"X-Request-ID": "sync-1"})

    assert response.json() == {"request_id": "sync-1"}


@pytest.mark.parametrize(
    "incoming",
    ["abc\r\nX-Admin: yes", "line\nbreak", "x" * 10_240, "spaces are not ids", "", "é"],
    ids=["crlf", "lf", "10KB", "spaces", "empty", "non-ascii"],
)
async def test_a_malformed_incoming_id_is_replaced_not_echoed(
    incoming: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with app_client(build_app()) as client:
        response = await client.get(
            "/items/5", headers=[(b"x-request-id", incoming.encode("utf-8"))]
        )

    output = capsys.readouterr().out
    assert response.status_code == 200
    assert response.headers["x-request-id"] != incoming
    assert len(response.headers["x-request-id"]) == 32
    if incoming:
        assert incoming not in output


async def test_every_log_line_of_a_request_carries_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with app_client(build_app()) as client:
        await client.get("/items/9", headers={"X-Request-ID": "req-one"})
        await client.get("/items/8", headers={"X-Request-ID": "req-two"})

    records = json_lines(capsys.readouterr().out)
    by_request: dict[object, list[str]] = {}
    for record in records:
        by_request.setdefault(record["request_id"], []).append(str(record["logger"]))
    assert by_request["req-one"] == ["shop.items", "omnistack.access"]
    assert by_request["req-two"] == ["shop.items", "omnistack.access"]


async def test_one_access_line_per_request_with_route_template_and_timing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with app_client(build_app()) as client:
        await client.get("/items/42?secret_token=abc", headers={"X-Request-ID": "req-acc"})

    [access] = [r for r in json_lines(capsys.readouterr().out) if r["logger"] == "omnistack.access"]
    assert access["method"] == "GET"
    assert access["route"] == "/items/{item_id}"
    assert access["path"] == "/items/42"
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float)
    assert access["client"] == "127.0.0.1"
    assert access["request_id"] == "req-acc"
    assert "secret_token" not in json.dumps(access)


async def test_errors_carry_the_request_id_in_header_and_problem_body(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with app_client(build_app()) as client:
        missing = await client.get("/nowhere", headers={"X-Request-ID": "req-404"})

    assert missing.headers["x-request-id"] == "req-404"
    assert missing.json()["request_id"] == "req-404"
    [access] = [r for r in json_lines(capsys.readouterr().out) if r["logger"] == "omnistack.access"]
    assert (access["route"], access["status"]) == ("<unmatched>", 404)


async def test_an_unhandled_error_is_logged_and_answered_with_the_same_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = build_app()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    async with app_client(app) as client:
        response = await client.get("/boom", headers={"X-Request-ID": "req-500"})

    records = json_lines(capsys.readouterr().out)
    [error] = [r for r in records if r["logger"] == "omnistack.errors"]
    assert response.status_code == 500
    assert response.json()["request_id"] == "req-500"
    assert error["request_id"] == "req-500"
    assert "RuntimeError: kaboom" in str(error["exception"])


async def test_the_id_is_cleared_after_the_request() -> None:
    async with app_client(build_app()) as client:
        await client.get("/items/1", headers={"X-Request-ID": "req-gone"})

    assert current_request_id() is None


async def test_an_error_after_the_response_started_is_raised_for_the_server_to_drop() -> None:
    async def half_sent(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("failed mid-body")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}
    with pytest.raises(RuntimeError, match="failed mid-body"):
        await ObservabilityMiddleware(half_sent)(scope, receive, send)
    assert [message["type"] for message in sent] == ["http.response.start"]


def test_the_direct_access_line_matches_the_logged_one(tmp_path: Path) -> None:
    # Outside pytest (whose capture handlers force the ordinary path) the access line is
    # written straight to the service handler; it must be the same line a LogRecord gives.
    script = textwrap.dedent(
        """
        import asyncio, logging
        from omnistack_core import create_app, load_settings
        from omnistack_core.testing import app_client

        async def main():
            app = create_app(load_settings(log_format="json"))
            async with app_client(app) as client:
                await client.get("/api/v1/public/health", headers={"X-Request-ID": "direct"})
                logging.getLogger().addHandler(logging.NullHandler())  # forces a LogRecord
                await client.get("/api/v1/public/health", headers={"X-Request-ID": "record"})

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )

    lines = {
        record["request_id"]: record
        for record in json_lines(result.stdout)
        if record["logger"] == "omnistack.access"
    }
    direct, logged = lines["direct"], lines["record"]
    volatile = {"timestamp", "request_id", "duration_ms", "message"}
    assert {k: v for k, v in direct.items() if k not in volatile} == {
        k: v for k, v in logged.items() if k not in volatile
    }
    assert list(direct) == list(logged)
    assert direct["route"] == "/api/v1/public/health"
