"""A local Resend: the email API on 127.0.0.1, speaking Resend's wire format, for tests.

It stands in for ``api.resend.com`` in tests, ours and users' own: Resend's official SDK,
pointed at it through ``RESEND_API_URL``, gets the answers Resend gives, over real HTTP.

* ``POST /emails``: the JSON request Resend takes, ``200 {"id": …}``; errors as
  ``{"statusCode", "name", "message"}``: 401 ``missing_api_key``, 403 ``invalid_api_key``,
  422 ``missing_required_field`` / ``validation_error`` / ``invalid_attachment``, 429
  ``rate_limit_exceeded`` with ``retry-after`` and the ``ratelimit-*`` headers.
* ``Idempotency-Key``: within 24 hours, the same key with the same body answers the first
  id and delivers nothing new; with another body, 409 ``invalid_idempotent_request``; while
  the first request is still being handled, 409 ``concurrent_idempotent_requests``; a key
  outside 1-256 characters, 400 ``invalid_idempotency_key``.
* ``GET /emails/{id}``: a delivered email.

Deliveries are recorded for assertions; failures are staged with :meth:`LocalResend.fail_next`,
a rate limit with ``rate_limit``, slowness with ``delay``, the passing of time with
:meth:`LocalResend.advance`. :meth:`LocalResend.webhook` makes signed webhooks the way Resend
sends them.

    with LocalResend() as server:
        settings = load_settings(
            EmailSettings,
            email_provider="resend",
            resend_api_key=server.api_key,
            resend_api_url=server.url,
            email_from="Acme <hello@acme.test>",
        )
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, NoReturn

from omnistack_core.testing.local_server import LocalServer

IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60
MAX_RECIPIENTS = 50
MAX_ATTACHMENTS_BYTES = 40 * 1024 * 1024  # Resend's limit, counted after base64 encoding
_MAX_BODY_BYTES = 50 * 1024 * 1024
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")
_NAMED = re.compile(r"[^<>]*<\s*(?P<email>[^<>]+?)\s*>")
_TAG = re.compile(r"[A-Za-z0-9_-]{1,256}")
_DEFAULT_NAMES = {
    400: "validation_error",
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    409: "concurrent_idempotent_requests",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "application_error",
}
_FORMAT = (
    "The email address needs to follow the `email@example.com` or "
    "`Name <email@example.com>` format."
)
_JSON = "application/json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ResendDelivery:
    """An email the server accepted.

    Attributes:
        id: The id it answered.
        payload: The JSON body of the request.
        idempotency_key: The request's ``Idempotency-Key``, if any.
        headers: The request's headers, names in lower case.
        created_at: When it was accepted.
    """

    id: str
    payload: dict[str, Any]
    idempotency_key: str | None
    headers: dict[str, str] = field(repr=False)
    created_at: datetime

    @property
    def to(self) -> list[str]:
        """The ``to`` addresses, always as a list."""
        return _as_list(self.payload.get("to"))

    def attachment(self, index: int) -> bytes:
        """The decoded content of attachment ``index``."""
        content = self.payload["attachments"][index]["content"]
        return bytes(content) if isinstance(content, list) else base64.b64decode(content)


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """A request the server answered.

    Attributes:
        method: ``POST``, ``GET``...
        path: The path, without the query.
        headers: Its headers, names in lower case.
        body: Its raw body.
        status: The status answered.
    """

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    status: int


@dataclass(slots=True)
class _Failure:
    status: int
    name: str
    message: str
    retry_after: float | None
    body: bytes | None
    content_type: str
    after_handling: bool

    def raise_it(self) -> NoReturn:
        headers = {}
        if self.retry_after is not None or self.status == 429:
            headers["retry-after"] = _seconds(self.retry_after or 1)
        if self.body is not None:
            raise _Raw(self.status, self.body, self.content_type, headers)
        raise _Answer(self.status, self.name, self.message, headers)


@dataclass(slots=True)
class _Stored:
    fingerprint: str
    response: dict[str, Any]
    at: float


class _Answer(Exception):  # noqa: N818 - control flow inside the handler, not an error
    def __init__(
        self, status: int, name: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"statusCode": status, "name": name, "message": message}
        self.headers = dict(headers or {})


class LocalResend(LocalServer):
    """Resend's email API on a free port of 127.0.0.1.

    Args:
        api_key: The key requests must carry; a random ``re_…`` when None.
        rate_limit: Requests allowed per second (Resend's default is 2); unlimited when None.

    Attributes:
        deliveries: Emails accepted, oldest first (repeats under an idempotency key excluded).
        requests: Every request answered, oldest first.
        delay: Seconds each send takes (to stage concurrent requests).
        answer_delay: Seconds every answer is held after its request was handled (to stage a
            client that dies between the delivery and its answer).
        webhook_secret: The signing secret :meth:`webhook` signs with (``whsec_…``).
    """

    def __init__(self, api_key: str | None = None, *, rate_limit: int | None = None) -> None:
        self.api_key = api_key or f"re_test_{secrets.token_urlsafe(18)}"
        self.rate_limit = rate_limit
        self.delay = 0.0
        self.answer_delay = 0.0
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.deliveries: list[ResendDelivery] = []
        self.requests: list[ResendRequest] = []
        self._failures: deque[_Failure] = deque()
        self._idempotency: dict[str, _Stored] = {}
        self._in_progress: set[str] = set()
        self._recent: deque[float] = deque()
        self._offset = 0.0
        self._lock = threading.Lock()

    # Staging --------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        name: str | None = None,
        message: str | None = None,
        *,
        times: int = 1,
        retry_after: float | None = None,
        body: bytes | None = None,
        content_type: str = _JSON,
        after_handling: bool = False,
    ) -> None:
        """Answer the next ``times`` requests with an error.

        Args:
            status: The HTTP status.
            name: Resend's error name; the usual one for ``status`` when None.
            message: The error message.
            times: How many requests fail.
            retry_after: Seconds sent as ``retry-after`` (a 429 always sends one).
            body: A raw body instead of Resend's JSON error (an HTML page from a proxy).
            content_type: The raw body's media type.
            after_handling: Handle the request first (deliver the email, remember its
                idempotency key), then answer the error: the answer was lost on the way back
                (a proxy timed out), so the client cannot know the email went out.
        """
        failure = _Failure(
            status,
            name or _DEFAULT_NAMES.get(status, "application_error"),
            message or f"Staged failure {status}.",
            retry_after,
            body,
            content_type,
            after_handling,
        )
        with self._lock:
            self._failures.extend(failure for _ in range(times))

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward (idempotency keys expire after 24 hours)."""
        with self._lock:
            self._offset += seconds

    def clear(self) -> None:
        """Forget deliveries, requests, idempotency keys and staged failures."""
        with self._lock:
            self.deliveries.clear()
            self.requests.clear()
            self._failures.clear()
            self._idempotency.clear()
            self._recent.clear()

    # Webhooks -------------------------------------------------------------------------------

    def webhook(
        self,
        event_type: str,
        delivery: ResendDelivery | None = None,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        **data: Any,
    ) -> tuple[dict[str, str], bytes]:
        """A signed webhook as Resend would send it about ``delivery``.

        Args:
            event_type: ``email.delivered``, ``email.bounced``...
            delivery: The email the event is about; its id, sender, recipients and subject
                fill ``data``.
            msg_id: The ``svix-id``; random when None.
            timestamp: The ``svix-timestamp``; now when None.
            secret: Sign with this secret instead of :attr:`webhook_secret`.
            **data: More (or overriding) ``data`` fields, e.g.
                ``bounce={"type": "Permanent", "subType": "General", "message": "…"}``.

        Returns:
            The headers and the raw body to POST.
        """
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        fields: dict[str, Any] = {"created_at": now}
        if delivery is not None:
            fields.update(
                email_id=delivery.id,
                to=delivery.to,
                subject=delivery.payload.get("subject"),
                **{"from": delivery.payload.get("from")},
            )
        fields.update(data)
        body = json.dumps({"type": event_type, "created_at": now, "data": fields}).encode()
        headers = sign_webhook(
            secret or self.webhook_secret, body, msg_id=msg_id, timestamp=timestamp
        )
        return headers, body

    # Handling -------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._offset

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        # Refused unread, like any API gateway; the connection is not reused after it.
        raw = handler.rfile.read(length) if 0 < length <= _MAX_BODY_BYTES else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        status, payload, content_type, extra = self._answer(
            handler.command, handler.path, headers, raw, too_large=length > _MAX_BODY_BYTES
        )
        with self._lock:
            self.requests.append(
                ResendRequest(
                    handler.command, handler.path.split("?", maxsplit=1)[0], headers, raw, status
                )
            )
        if length > _MAX_BODY_BYTES:
            extra["Connection"] = "close"
        if self.answer_delay:
            # Handled, but not answered yet: a client that dies now never learns the outcome.
            time.sleep(self.answer_delay)
        self._send(handler, status, payload, content_type, extra)

    def _answer(
        self, method: str, target: str, headers: dict[str, str], raw: bytes, *, too_large: bool
    ) -> tuple[int, bytes, str, dict[str, str]]:
        extra: dict[str, str] = {}
        if too_large:
            body = {"statusCode": 413, "name": "validation_error", "message": "Body too large."}
            return 413, json.dumps(body).encode(), _JSON, extra
        try:
            status, body = self._route(method, target, headers, raw, extra)
        except _Answer as answer:
            status, body = answer.status, answer.body
            extra.update(answer.headers)
        except _Raw as staged:
            return staged.status, staged.body, staged.content_type, staged.headers
        return status, json.dumps(body).encode(), _JSON, extra

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str],
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        extra: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None and not failure.after_handling:
            failure.raise_it()
        answer = self._handled(method, target, headers, raw, extra)
        if failure is not None:
            failure.raise_it()
        return answer

    def _handled(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        extra: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        path = target.split("?", maxsplit=1)[0].rstrip("/")
        self._authenticate(headers)
        extra.update(self._rate_limited())
        if path == "/emails":
            if method != "POST":
                raise _Answer(
                    405, "method_not_allowed", "Method is not allowed for the requested path."
                )
            return self._send_email(headers, raw)
        if path.startswith("/emails/") and path.count("/") == 2:
            if method != "GET":
                raise _Answer(
                    405, "method_not_allowed", "Method is not allowed for the requested path."
                )
            return self._get_email(path.rsplit("/", 1)[1])
        raise _Answer(404, "not_found", "The requested endpoint does not exist.")

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _Answer(401, "missing_api_key", "Missing API key in the authorization header.")
        if not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            raise _Answer(403, "invalid_api_key", "API key is invalid")

    def _rate_limited(self) -> dict[str, str]:
        if self.rate_limit is None:
            return {}
        with self._lock:
            now = self._now()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            reset = 1.0 - (now - self._recent[0]) if self._recent else 1.0
            limit_headers = {
                "ratelimit-limit": str(self.rate_limit),
                "ratelimit-reset": _seconds(reset),
            }
            if len(self._recent) >= self.rate_limit:
                limit_headers |= {"ratelimit-remaining": "0", "retry-after": _seconds(reset)}
                raise _Answer(
                    429,
                    "rate_limit_exceeded",
                    f"Too many requests. You can only make {self.rate_limit} requests per "
                    "second. See rate limit response headers for more information. Or contact "
                    "support to increase rate limit.",
                    limit_headers,
                )
            self._recent.append(now)
            limit_headers["ratelimit-remaining"] = str(self.rate_limit - len(self._recent))
            return limit_headers

    def _send_email(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Answer(422, "validation_error", "The request body is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise _Answer(422, "validation_error", "The request body must be a JSON object.")
        key = headers.get("idempotency-key")
        if key is None:
            _validate(payload)
            return 200, {"id": self._deliver(payload, None, headers)}
        if not 1 <= len(key) <= 256:
            raise _Answer(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        fingerprint = hashlib.sha256(
            json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        with self._lock:
            stored = self._idempotency.get(key)
            if stored is not None and self._now() - stored.at >= IDEMPOTENCY_WINDOW_SECONDS:
                del self._idempotency[key]
                stored = None
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise _Answer(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload.",
                    )
                return 200, dict(stored.response)
            if key in self._in_progress:
                raise _Answer(
                    409,
                    "concurrent_idempotent_requests",
                    "Same idempotency key used while original request is still in progress.",
                )
            self._in_progress.add(key)
        try:
            if self.delay:
                time.sleep(self.delay)
            _validate(payload)
            response = {"id": self._deliver(payload, key, headers)}
            with self._lock:
                self._idempotency[key] = _Stored(fingerprint, response, self._now())
        finally:
            with self._lock:
                self._in_progress.discard(key)
        return 200, response

    def _deliver(self, payload: dict[str, Any], key: str | None, headers: dict[str, str]) -> str:
        if key is None and self.delay:
            time.sleep(self.delay)
        email_id = str(uuid.uuid4())
        delivery = ResendDelivery(
            email_id, payload, key, headers, datetime.fromtimestamp(self._now(), UTC)
        )
        with self._lock:
            self.deliveries.append(delivery)
        return email_id

    def _get_email(self, email_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            found = next((d for d in self.deliveries if d.id == email_id), None)
        if found is None:
            raise _Answer(404, "not_found", "Email not found")
        payload = found.payload
        return 200, {
            "object": "email",
            "id": found.id,
            "to": found.to,
            "from": payload.get("from"),
            "created_at": found.created_at.isoformat(),
            "subject": payload.get("subject"),
            "html": payload.get("html"),
            "text": payload.get("text"),
            "bcc": _as_list(payload.get("bcc")) or None,
            "cc": _as_list(payload.get("cc")) or None,
            "reply_to": _as_list(payload.get("reply_to")) or None,
            "last_event": "delivered",
            "tags": payload.get("tags"),
        }


class _Raw(Exception):  # noqa: N818 - control flow inside the handler, not an error
    def __init__(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _valid_address(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    named = _NAMED.fullmatch(value.strip())
    return bool(_ADDRESS.fullmatch(named["email"] if named else value.strip()))


def _validate(payload: dict[str, Any]) -> None:
    for required in ("from", "to", "subject"):
        if payload.get(required) in (None, "", []):
            raise _Answer(422, "missing_required_field", f"Missing `{required}` field.")
    for name in ("from", "to", "cc", "bcc", "reply_to"):
        value = payload.get(name)
        addresses = [value] if isinstance(value, str) or value is None else value
        if value is not None and (
            not isinstance(addresses, list) or not all(_valid_address(a) for a in addresses)
        ):
            raise _Answer(422, "validation_error", f"Invalid `{name}` field. {_FORMAT}")
    if len(_as_list(payload["to"])) > MAX_RECIPIENTS:
        raise _Answer(
            422,
            "validation_error",
            f"Too many recipients in the `to` field. The maximum is {MAX_RECIPIENTS}.",
        )
    if not isinstance(payload["subject"], str):
        raise _Answer(422, "validation_error", "Invalid `subject` field. It must be a string.")
    if not any(payload.get(body) for body in ("html", "text", "react", "template")):
        raise _Answer(422, "missing_required_field", "Missing `html` or `text` field.")
    headers = payload.get("headers")
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise _Answer(422, "validation_error", "The `headers` field must be an object of strings.")
    _validate_tags(payload.get("tags"))
    _validate_attachments(payload.get("attachments"))


def _validate_tags(tags: Any) -> None:
    if tags is None:
        return
    rule = (
        "Tags should only contain ASCII letters (a-z, A-Z), numbers (0-9), underscores (_), "
        "or dashes (-), and be at most 256 characters."
    )
    if not isinstance(tags, list):
        raise _Answer(422, "validation_error", "The `tags` field must be an array.")
    for tag in tags:
        if not isinstance(tag, dict) or not _TAG.fullmatch(str(tag.get("name", ""))):
            raise _Answer(422, "validation_error", rule)
        if "value" in tag and not _TAG.fullmatch(str(tag["value"])):
            raise _Answer(422, "validation_error", rule)


def _validate_attachments(attachments: Any) -> None:
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise _Answer(422, "validation_error", "The `attachments` field must be an array.")
    total = 0
    for attachment in attachments:
        if not isinstance(attachment, dict) or not (
            attachment.get("content") or attachment.get("path")
        ):
            raise _Answer(
                422, "invalid_attachment", "Attachment must have either a `content` or `path`."
            )
        content = attachment.get("content")
        if isinstance(content, str):
            try:
                base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise _Answer(
                    422, "invalid_attachment", "Attachment `content` must be base64 encoded."
                ) from None
            total += len(content)
        elif isinstance(content, list):
            total += (len(content) + 2) // 3 * 4
    if total > MAX_ATTACHMENTS_BYTES:
        raise _Answer(422, "validation_error", "Attachments exceed the 40MB size limit.")


def sign_webhook(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The Svix headers Resend sends with a webhook: ``svix-id``, ``-timestamp``, ``-signature``.

    Args:
        secret: The signing secret, ``whsec_<base64 key>``.
        body: The exact body that will be sent.
        msg_id: The message id; a random ``msg_…`` when None.
        timestamp: Unix seconds; now when None.
    """
    msg_id = msg_id or f"msg_{secrets.token_urlsafe(18)}"
    sent_at = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{sent_at}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": msg_id,
        "svix-timestamp": sent_at,
        "svix-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }
