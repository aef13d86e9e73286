"""The service's jobs. Arguments arrive as JSON: pass ids, and load rows inside the job."""

import logging

from omnistack_core.jobs import JobContext, job

from app.models import Item

logger = logging.getLogger(__name__)


@job("items.created")
async def item_created(ctx: JobContext, item_id: int) -> None:
    """An example: work done after a request, outside it (indexing, emails, webhooks)."""
    async with ctx.app.state.database.session() as session:
        item = await session.get(Item, item_id)
    if item is None:
        logger.warning("Item %s is gone", item_id)
        return
    logger.info("Item %s (%s) created", item.id, item.name, extra={"item_id": item.id})
