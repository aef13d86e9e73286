"""What ``arq tests.jobs.worker_service.WorkerSettings`` runs: the jobs of ``service``."""

from omnistack_core import create_app
from omnistack_core.email import EmailModule
from omnistack_core.jobs import JobsModule, worker_settings
from tests.jobs.service import JOBS

app = create_app(modules=[JobsModule(jobs=JOBS), EmailModule()])
WorkerSettings = worker_settings(app)
