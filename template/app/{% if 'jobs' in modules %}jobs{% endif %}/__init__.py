"""Background jobs: the functions in ``tasks``, run by ``arq app.jobs.worker.WorkerSettings``."""
