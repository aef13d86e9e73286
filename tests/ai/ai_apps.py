"""A service with the AI module, served by uvicorn on 127.0.0.1 for streaming tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Header
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from omnistack_core import Settings, create_app
from omnistack_core.ai import (
    AI,
    AIModule,
    AISettings,
    ChatRequest,
    Message,
    response_body,
    sse_response,
)
from omnistack_core.settings import load_settings
from omnistack_core.testing import wait_until_async
from tests.ai.ai_clients import MODELS, Providers


class ServiceSettings(Settings, AISettings):
    """The settings of a service with the AI module."""


class Question(BaseModel):
    text: str
    provider: str = "openai"
    stream: bool = False


def ai_app(providers: Providers, module: AIModule | None = None, **values: Any) -> FastAPI:
    """A service with ``POST /chat`` (JSON, or SSE when asked), the caller named by X-User."""
    settings = load_settings(
        ServiceSettings,
        env_file=None,
        openai_api_key=providers.openai.api_key,
        openai_base_url=providers.openai.url,
        anthropic_api_key=providers.anthropic.api_key,
        anthropic_base_url=providers.anthropic.url,
        ai_max_retries=0,
        **values,
    )
    app = create_app(settings, modules=[module or AIModule()])

    @app.post("/chat", response_model=None)
    async def chat(
        question: Question, ai: AI, x_user: str = Header(default="anonymous")
    ) -> StreamingResponse | dict[str, Any]:
        request = ChatRequest(
            messages=[Message.user(question.text)],
            model=MODELS[question.provider],
            user_id=x_user,
        )
        if question.stream:
            return await sse_response(ai.stream(request))
        return response_body(await ai.chat(request))

    return app


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    await wait_until_async(
        lambda: server.started or task.done(),
        timeout=30,
        interval=0.01,
        message="uvicorn did not start",
    )
    if not server.started:
        task.result()  # raises the server's startup error
        raise AssertionError("uvicorn stopped before it started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
