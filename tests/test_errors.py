from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from omnistack_core import ProblemError, create_app, load_settings
from omnistack_core.errors import PROBLEM_MEDIA_TYPE
from omnistack_core.testing import app_client


class Order(BaseModel):
    quantity: int
    note: str


def build_app() -> FastAPI:
    app = create_app(load_settings(max_request_body_bytes=1024))

    @app.post("/orders")
    async def place_order(order: Order) -> Order:
        return order

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("internal detail: connection to 10.0.0.5 refused")

    @app.get("/teapot")
    async def teapot() -> None:
        raise ProblemError(
            418,
            "This server only brews tea.",
            type="https://errors.example.com/teapot",
            headers={"Retry-After": "60"},
            extensions={"brew": "earl grey"},
        )

    @app.get("/private")
    async def private() -> None:
        raise HTTPException(401, "Sign in first.", headers={"WWW-Authenticate": "Bearer"})

    return app


async def test_unknown_path_is_a_problem_404() -> None:
    async with app_client(build_app()) as client:
        response = await client.get("/no/such/thing", headers={"X-Request-ID": "req-404"})

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/no/such/thing",
        "request_id": "req-404",
    }


async def test_wrong_method_is_a_problem_405() -> None:
    async with app_client(build_app()) as client:
        response = await client.delete("/orders")

    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"


async def test_invalid_body_is_a_problem_422_listing_each_error_without_the_input() -> None:
    async with app_client(build_app()) as client:
        response = await client.post("/orders", json={"quantity": "card-4242-4242"})

    body = response.json()
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert body["status"] == 422
    assert {tuple(error["loc"]) for error in body["errors"]} == {
        ("body", "quantity"),
        ("body", "note"),
    }
    assert "card-4242-4242" not in response.text


async def test_unhandled_exception_is_a_generic_500_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with app_client(build_app()) as client:
        response = await client.get("/crash", headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "instance": "/crash",
        "request_id": "req-500",
    }
    assert "10.0.0.5" not in response.text
    assert "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.name == "omnistack.errors"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert "GET /crash" in record.getMessage()


async def test_problem_error_keeps_its_type_headers_and_extensions() -> None:
    async with app_client(build_app()) as client:
        response = await client.get("/teapot", headers={"X-Request-ID": "req-418"})

    assert response.status_code == 418
    assert response.headers["retry-after"] == "60"
    assert response.json() == {
        "brew": "earl grey",
        "type": "https://errors.example.com/teapot",
        "title": "I'm a Teapot",
        "status": 418,
        "detail": "This server only brews tea.",
        "instance": "/teapot",
        "request_id": "req-418",
    }


async def test_http_exception_keeps_its_detail_and_headers() -> None:
    async with app_client(build_app()) as client:
        response = await client.get("/private")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == "Sign in first."


async def test_declared_body_over_the_limit_is_a_problem_413() -> None:
    async with app_client(build_app()) as client:
        response = await client.post("/orders", content=b"x" * 2048)

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["detail"] == "The request body is larger than 1024 bytes."


async def test_chunked_body_over_the_limit_is_a_problem_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    async with app_client(build_app()) as client:
        response = await client.post("/orders", content=chunks())

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
