"""The jobs worker: ``arq examples.saas.worker.WorkerSettings``, beside the API, on its Redis."""

from omnistack_core.jobs import worker_settings

from .main import create_service

WorkerSettings = worker_settings(create_service())
