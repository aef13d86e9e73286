"""What ``arq tests.jobs.worker_service.WorkerSettings`` runs: the jobs of ``service``."""

from omnistack_core import create_app
from omnistack_core.email import EmailModule
from omnistack_core.jobs import JobsModule, worker_settings
from tests.jobs import service  # noqa: F401 - registers the jobs

app = create_app(modules=[JobsModule(), EmailModule()])
WorkerSettings = worker_settings(app)
