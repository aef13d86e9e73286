"""What the worker's log lines leave out: job arguments and results, and email addresses.

arq logs each job as it starts with its arguments (``0.01s → 4f2a:email.send(...)``) and as it
ends with its result. Arguments are the caller's data: recipients, names, free text. The
worker's lines keep the job's name and id (and our own line per attempt adds its status and
duration), never the values: the start line shows ``(…)``, results are not logged, and an
email address in any other arq line (an exception's message) is masked as ``a***@example.com``.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"([^\s@'\"<>(),;:]?)[^\s@'\"<>(),;:]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")

# arq's line as a job starts: (seconds waited, "id:name", arguments, " try=2 delayed=...").
_STARTED = "%6.2fs → %s(%s)%s"


def mask_emails(text: str) -> str:
    """``text`` with each email address masked: ``ada@example.com`` becomes ``a***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", text)


class JobArgumentsFilter(logging.Filter):
    """Drops job arguments from arq's start line and masks email addresses in its others."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record``'s arguments in place; never drops a record."""
        if not isinstance(record.args, tuple):
            return True
        if record.msg == _STARTED and len(record.args) == 4:
            waited, ref, _, extra = record.args
            record.args = (waited, ref, "…", extra)
        else:
            record.args = tuple(
                mask_emails(str(arg)) if isinstance(arg, str | BaseException) else arg
                for arg in record.args
            )
        return True


def keep_job_arguments_out_of_logs() -> None:
    """Install :class:`JobArgumentsFilter` on arq's worker logger (once)."""
    worker_logger = logging.getLogger("arq.worker")
    if not any(isinstance(existing, JobArgumentsFilter) for existing in worker_logger.filters):
        worker_logger.addFilter(JobArgumentsFilter())
