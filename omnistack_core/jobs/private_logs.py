"""What the worker's log lines leave out: job arguments and results, and email addresses.

arq logs each job as it starts with its arguments (``0.01s → 4f2a:email.send(...)``) and as it
ends with its result. Arguments are the caller's data: recipients, names, free text. The
worker's lines keep the job's name and id (and our own line per attempt adds its status and
duration), never the values: the start line shows ``(…)`` and results are not logged. Every
other line the worker prints (a job's own, the email module's, an exception's message) has
its email addresses masked as ``a***@example.com``; tracebacks, printed at ERROR, are not.
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
    """Drops job arguments from arq's start line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record``'s arguments in place; never drops a record."""
        if record.msg == _STARTED and isinstance(record.args, tuple) and len(record.args) == 4:
            waited, ref, _, extra = record.args
            record.args = (waited, ref, "…", extra)
        return True


class EmailMaskFilter(logging.Filter):
    """Masks email addresses in a record's message and in its text fields (``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drops a record."""
        message = record.getMessage()
        masked = mask_emails(message)
        if masked != message:
            record.msg, record.args = masked, None
        for key, value in vars(record).items():
            if key not in _RECORD_TEXT and isinstance(value, str) and "@" in value:
                setattr(record, key, mask_emails(value))
        return True


# Text a record always has that is not the caller's: where it was logged from.
_RECORD_TEXT = frozenset({"msg", "name", "levelname", "pathname", "filename", "module", "funcName"})


def keep_job_arguments_out_of_logs() -> None:
    """In the worker: drop arq's job arguments, and mask email addresses on every line.

    The mask goes on the root logger's handlers (the service's), which every record the
    worker prints passes through, whichever logger it came from.
    """
    worker_logger = logging.getLogger("arq.worker")
    if not any(isinstance(existing, JobArgumentsFilter) for existing in worker_logger.filters):
        worker_logger.addFilter(JobArgumentsFilter())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, EmailMaskFilter) for existing in handler.filters):
            handler.addFilter(EmailMaskFilter())
