"""Report not-ready as soon as the process is asked to stop, while in-flight requests finish.

Platforms stop an instance with SIGTERM (Railway, Render, Kubernetes) or SIGINT (Fly's
default), then kill it after a grace period: about 3 s on Railway, 5 s on Fly, 30 s on Render.
From the signal on, readiness answers 503 so load balancers stop sending new requests, while
the server (uvicorn's graceful shutdown, bounded by ``--timeout-graceful-shutdown``) lets the
requests already in flight complete.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from starlette.applications import Starlette

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def is_draining(app: Starlette) -> bool:
    """Whether ``app`` has been asked to stop."""
    return bool(getattr(app.state, "draining", False))


@asynccontextmanager
async def drain_on_stop_signal(app: Starlette) -> AsyncIterator[None]:
    """While active, a stop signal marks ``app`` as draining, then reaches the server as usual.

    The handlers the server installed (uvicorn's, gunicorn's) are chained, not replaced, and
    restored on exit. Signals can only be handled on the main thread; elsewhere (an app run by
    a test client in a worker thread) this does nothing.

    Args:
        app: The application whose ``state.draining`` is set.
    """
    app.state.draining = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, SignalHandler] = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def mark_draining(signum: int, frame: FrameType | None) -> None:
        app.state.draining = True
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            # Nobody else handles it: do what the signal would have done.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, mark_draining)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: the handler was not installed from Python and cannot be put back.
            if handler is not None and signal.getsignal(signum) is mark_draining:
                signal.signal(signum, handler)
