"""The README's example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from omnistack_core.db import Base
from omnistack_core.testing import app_client

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


async def test_the_usage_example_serves_items_and_problem_404s() -> None:
    [example] = [block for block in python_blocks() if "create_app()" in block]
    namespace: dict[str, object] = {}
    # dont_inherit: the example runs without this file's `from __future__ import annotations`.
    exec(compile(example, str(README), "exec", dont_inherit=True), namespace)  # noqa: S102
    app = namespace["app"]
    item = namespace["Item"]

    async with app_client(app) as client:
        async with app.state.database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with app.state.database.session() as session:
            session.add(item(id=1, name="kettle"))
        found = await client.get("/api/v1/items/1")
        missing = await client.get("/api/v1/items/2")

    assert found.json() == {"name": "kettle"}
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No item 2."
