"""The README's jobs example runs as written."""

from __future__ import annotations

from omnistack_core.jobs import InlineQueue, JobsModule
from omnistack_core.testing import app_client
from tests.test_readme import python_blocks


async def test_the_jobs_example_enqueues_once_per_user() -> None:
    [example] = [block for block in python_blocks() if "@job(" in block]
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    app = namespace["app"]

    async with app_client(app) as client:
        first = await client.post("/api/v1/signup/u1")
        again = await client.post("/api/v1/signup/u1")
        queue = JobsModule.of(app)
        assert isinstance(queue, InlineQueue)
        await queue.drain()

    assert first.json() == {"job": "welcome:u1"}
    assert again.json() == {"job": None}
