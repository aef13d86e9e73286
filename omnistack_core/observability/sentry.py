"""Error reporting and tracing with Sentry: off unless ``SENTRY_DSN`` is set.

:func:`init_sentry` configures the SDK for a FastAPI service:

- **Integrations are listed, not discovered.** The SDK's auto-enabling integrations import
  every library they could instrument (openai, anthropic, arq, redis, SQLAlchemy...) at
  start-up, about 1.4 s of a cold start; we enable Starlette, FastAPI and logging, and keep
  the SDK's small default set (excepthook, atexit, dedupe, threading, stdlib...).
- **Errors arrive through logging.** The app logs an unhandled exception with
  ``logger.exception`` and answers 500 itself, so the SDK never sees it raised: records at
  ERROR and above become events, INFO and above become breadcrumbs.
- **Probes are never traced.** Health and metrics endpoints are called every few seconds by
  the platform; tracing them would spend the quota on requests nobody looks at. Other
  requests follow an upstream service's sampling decision when one arrives, else
  ``SENTRY_TRACES_SAMPLE_RATE``. At a rate of 0 tracing is off altogether, so no request
  pays for a transaction and no client can switch tracing on with a ``sentry-trace`` header.
- **Nothing secret leaves the process.** The SDK collects no personal data (IP address,
  cookies, user) by default; ``send_default_pii`` is left unset, as sentry-sdk 2.75
  deprecates it and warns even when it is False. On top of that, whatever an override turns
  on, every event, transaction, breadcrumb and Sentry log is scrubbed: ``[Filtered]``
  replaces the values of credential headers (``Authorization``, ``Cookie``, ``Set-Cookie``,
  ``Stripe-Signature``, ``Proxy-Authorization``, ``X-Api-Key``) and of any key, query
  parameter or header pair whose name holds ``token``, ``secret``, ``password`` or
  ``api-key``, wherever they appear (request data, extra, contexts, and the raw ASGI headers
  that frame variables carry); ``request.cookies`` is dropped; each configured secret value
  and any URL password becomes ``***`` in every string at any depth, exception messages and
  local variables included.
- **The host name is kept.** ``server_name`` is left to the SDK (the host name): on container
  platforms it is the instance id, which tells which replica failed, and it is no credential.
  Pass ``server_name=...`` to :func:`init_sentry` to replace it.

Events are tagged with the id of the request being served (``request_id``), read from
:mod:`omnistack_core.request_context` when the event is sent, so the middleware makes no call
into the SDK per request.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from omnistack_core.errors import MissingDependencyError
from omnistack_core.redaction import redact_text
from omnistack_core.request_context import current_request_id
from omnistack_core.settings import Settings, secret_values

if TYPE_CHECKING:
    from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint, Log, SamplingContext

FILTERED = "[Filtered]"
"""What replaces the value of a credential header, key or query parameter."""

PROBE_PATHS = frozenset(
    {
        # Spelled out rather than built from API_PREFIX: the app layer sits above this one.
        "/api/v1/public/health",
        "/api/v1/public/health/ready",
        "/api/v1/public/metrics",
    }
)
"""Paths that are never traced: the platform's health checks and the metrics scraper."""

RELEASE_VARIABLES = (
    "SENTRY_RELEASE",
    "GIT_SHA",
    "RAILWAY_GIT_COMMIT_SHA",
    "RENDER_GIT_COMMIT",
    "FLY_IMAGE_REF",
)
"""Where the release is read from, first set first: our own, then what platforms set."""

_SENSITIVE_NAMES = frozenset(
    {
        "authorization",
        "cookie",
        "set-cookie",
        "stripe-signature",
        "proxy-authorization",
        "x-api-key",
    }
)
_SENSITIVE_PARTS = ("token", "secret", "password", "api-key")
# How a frame variable's bytes or str shows once serialized: ``b'authorization'``.
_REPR_QUOTED = re.compile(r"b?(['\"])(?P<text>.*)\1", re.DOTALL)
# A query parameter: after ``?`` or ``&`` in any text (a URL in a message), and also first
# in a bare query string (``request.query_string``, a repr'd ASGI ``query_string``). Values
# stop at quotes and spaces, so a repr keeps its closing quote.
_PARAMETER = r"(?P<name>[^=&?#\s'\"]+)=(?P<value>[^&#\s'\"]*)"
_PARAMETER_IN_TEXT = re.compile(rf"(?<=[?&]){_PARAMETER}")
_PARAMETER_IN_QUERY = re.compile(rf"(?:^|(?<=[?&'\"])){_PARAMETER}")
_QUERY_KEYS = frozenset({"query_string", "http.query"})


def init_sentry(settings: Settings, **overrides: Any) -> bool:
    """Start reporting errors (and traces, if sampled) to Sentry when ``SENTRY_DSN`` is set.

    Args:
        settings: The service's settings: the DSN, environment, trace sample rate, and the
            secrets to keep out of every report.
        **overrides: Options for ``sentry_sdk.init``, applied last (``transport`` in tests,
            ``server_name``, ``max_request_body_size``...). Passing a ``before_*`` hook
            replaces that part of the scrubbing.

    Returns:
        True when Sentry was initialised, False when no DSN is configured (nothing is done,
        and ``sentry_sdk`` is not imported).

    Raises:
        MissingDependencyError: A DSN is set but the ``observability`` extra is not installed.
    """
    if settings.sentry_dsn is None:
        return False
    try:
        # Imported only now: without a DSN, or without the extra, nothing loads it.
        import sentry_sdk  # noqa: PLC0415
        from sentry_sdk.integrations.fastapi import FastApiIntegration  # noqa: PLC0415
        from sentry_sdk.integrations.logging import LoggingIntegration  # noqa: PLC0415
        from sentry_sdk.integrations.starlette import StarletteIntegration  # noqa: PLC0415
    except ImportError as exc:
        raise MissingDependencyError("observability", "observability") from exc

    scrubber = _Scrubber(secret_values(settings))
    rate = settings.sentry_traces_sample_rate
    options: dict[str, Any] = {
        "dsn": settings.sentry_dsn.get_secret_value(),
        "environment": settings.environment,
        "release": release_from_environment(),
        "auto_enabling_integrations": False,
        "integrations": [
            StarletteIntegration(),
            FastApiIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        # None turns tracing off; a sampler, even one that returns 0, would turn it on.
        "traces_sampler": _traces_sampler(rate) if rate > 0 else None,
        "before_send": scrubber.event,
        "before_send_transaction": scrubber.event,
        "before_breadcrumb": scrubber.breadcrumb,
        "before_send_log": scrubber.log,
    }
    options.update(overrides)
    sentry_sdk.init(**options)
    return True


def release_from_environment(environ: Mapping[str, str] = os.environ) -> str | None:
    """The release of the running code, from the first of :data:`RELEASE_VARIABLES` set.

    ``FLY_IMAGE_REF`` (``registry.fly.io/app:deployment-01HX``) gives its tag
    (``deployment-01HX``). Empty values count as unset.

    Args:
        environ: The environment to read.

    Returns:
        The release, or None when no variable is set; the SDK then makes its own guesses
        (``git rev-parse``, Heroku's and other platforms' variables).
    """
    for name in RELEASE_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        if name == "FLY_IMAGE_REF":
            _, colon, tag = value.rpartition(":")
            # No colon, or one that belongs to a registry's port (``host:5000/app``): no tag.
            return tag if colon and tag and "/" not in tag else None
        return value
    return None


def _traces_sampler(rate: float) -> Callable[[SamplingContext], float]:
    def traces_sampler(context: SamplingContext) -> float:
        asgi_scope = context.get("asgi_scope")
        if isinstance(asgi_scope, Mapping) and _is_probe(asgi_scope):
            return 0.0
        parent_sampled = context.get("parent_sampled")
        if parent_sampled is not None:
            # Keep a distributed trace whole: sampled upstream means sampled here.
            return 1.0 if parent_sampled else 0.0
        return rate

    return traces_sampler


def _is_probe(asgi_scope: Mapping[str, Any]) -> bool:
    path = asgi_scope.get("path")
    if not isinstance(path, str):
        return False
    # Behind a mount, Starlette's path includes the root path.
    root_path = asgi_scope.get("root_path") or ""
    candidates = {path, path.removeprefix(root_path)} if root_path else {path}
    return any(candidate.rstrip("/") in PROBE_PATHS for candidate in candidates)


def _is_sensitive_name(name: object) -> bool:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if not isinstance(name, str):
        return False
    if quoted := _REPR_QUOTED.fullmatch(name):
        name = quoted["text"]
    # ``X_Api_Key`` and ``x-api-key`` are one header; so is ``http.request.header.cookie``,
    # as span attributes name headers.
    normalized = name.lower().replace("_", "-")
    return normalized.rpartition(".")[2] in _SENSITIVE_NAMES or any(
        part in normalized for part in _SENSITIVE_PARTS
    )


def _is_count(value: object) -> bool:
    # Numbers under sensitive-looking keys (``gen_ai.usage.input_tokens``) are counts.
    return isinstance(value, int | float | None)


def _filtered_parameter(match: re.Match[str]) -> str:
    if _is_sensitive_name(match["name"]):
        return f"{match['name']}={FILTERED}"
    return match[0]


class _Scrubber:
    """The ``before_*`` hooks: credentials out, request id in."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Computed once: an event may hold thousands of strings, the settings do not change.
        self.secrets = tuple(secrets)

    def event(self, event: Event, _hint: Hint) -> Event | None:
        """Scrub an error event or a transaction and tag it with the request id."""
        scrubbed = cast("Event", self._scrub(event))
        request = scrubbed.get("request")
        if isinstance(request, dict):
            request.pop("cookies", None)
        request_id = current_request_id()
        if request_id is not None:
            scrubbed["tags"] = {**scrubbed.get("tags", {}), "request_id": request_id}
        return scrubbed

    def breadcrumb(self, crumb: Breadcrumb, _hint: BreadcrumbHint) -> Breadcrumb | None:
        """Scrub a breadcrumb as it is recorded."""
        return cast("Breadcrumb", self._scrub(crumb))

    def log(self, log: Log, _hint: Hint) -> Log | None:
        """Scrub a log record sent to Sentry Logs (when ``enable_logs`` is passed)."""
        return cast("Log", self._scrub(log))

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub_text(_PARAMETER_IN_TEXT.sub(_filtered_parameter, value))
        if isinstance(value, Mapping):
            return {self._scrub(key): self._scrub_item(key, item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            # A name and its value, as an ASGI scope holds headers: ``[b"cookie", b"..."]``.
            # Frame variables carry such scopes, so they reach reports too.
            if len(value) == 2 and _is_sensitive_name(value[0]) and not _is_count(value[1]):
                return [self._scrub(value[0]), FILTERED]
            return [self._scrub(item) for item in value]
        return value

    def _scrub_item(self, key: object, value: Any) -> Any:
        if key == "_meta":
            # The SDK's annotations, keyed by the event's own paths: no values to hide.
            return value
        if _is_sensitive_name(key) and not _is_count(value):
            return FILTERED
        if key in _QUERY_KEYS and isinstance(value, str):
            return self._scrub_text(_PARAMETER_IN_QUERY.sub(_filtered_parameter, value))
        return self._scrub(value)

    def _scrub_text(self, text: str) -> str:
        return redact_text(text, self.secrets)
