"""The worker: ``arq app.jobs.worker.WorkerSettings`` (the deployment guide's command)."""

from omnistack_core.jobs import worker_settings

from app.main import app

WorkerSettings = worker_settings(app)
