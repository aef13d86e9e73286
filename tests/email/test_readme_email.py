"""The README's email example runs as written."""

from __future__ import annotations

from omnistack_core.jobs import InlineQueue, JobsModule
from omnistack_core.testing import app_client
from tests.test_readme import python_blocks


async def test_the_email_example_queues_the_welcome_email_once() -> None:
    [example] = [block for block in python_blocks() if "EmailModule()" in block]
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    app = namespace["app"]

    async with app_client(app) as client:
        first = await client.post("/api/v1/invite/ada@example.com")
        again = await client.post("/api/v1/invite/ada@example.com")
        queue = JobsModule.of(app)
        assert isinstance(queue, InlineQueue)
        await queue.drain()

    assert first.json()["job"] is not None
    assert again.json() == {"job": None}  # the same message: one job, one email
