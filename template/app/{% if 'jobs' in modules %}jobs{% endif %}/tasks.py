"""The service's jobs. Arguments arrive as JSON: pass ids, and load rows inside the job.

``JOBS`` lists them for ``JobsModule(jobs=JOBS)`` in ``app/main.py``: a job the list lacks
is refused when it is enqueued, and the worker does not run it.
"""

import logging

from omnistack_core.jobs import JobContext, Jobs, job

from app.models import Item

logger = logging.getLogger(__name__)


@job("items.created")
async def item_created(ctx: JobContext, item_id: int) -> None:
    """An example: work done after a request, outside it (indexing, emails, webhooks)."""
    async with ctx.database.session() as session:
        item = await session.get(Item, item_id)
    if item is None:
        logger.warning("Item %s is gone", item_id)
        return
    logger.info("Item %s (%s) created", item.id, item.name, extra={"item_id": item.id})


JOBS: Jobs = [item_created]
