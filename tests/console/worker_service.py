"""What ``arq tests.console.worker_service.WorkerSettings`` runs: the unreliable job."""

from omnistack_core import create_app
from omnistack_core.jobs import JobsModule, worker_settings
from tests.console.unreliable_job import JOBS

app = create_app(modules=[JobsModule(jobs=JOBS)])
WorkerSettings = worker_settings(app)
