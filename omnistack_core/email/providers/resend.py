"""The Resend provider, through Resend's official SDK (``resend``).

The SDK keeps its configuration in module globals (``resend.api_key``, ``resend.api_url``,
``resend.default_async_http_client``) and reads them when a request starts. The provider sets
all three immediately before each call: the SDK reads them before its first ``await``, so on
one event loop no other task can run in between, and two providers (two keys, two URLs) can
send concurrently without using each other's. The values stay set after the call (putting
back the previous ones would be wrong when two calls overlap); :meth:`ResendProvider.aclose`
takes its client out again.

The SDK (and the ``requests`` library it brings) is imported on the first send, not when the
provider is built at start-up: a service that sends no email in its first seconds starts
without it. The email extra is checked when ``omnistack_core.email`` is imported.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from omnistack_core.email.errors import EmailDeliveryError, EmailTransientError, InvalidMessageError
from omnistack_core.email.message import EmailMessage
from omnistack_core.email.provider import EmailProvider

if TYPE_CHECKING:
    import resend
    from resend.exceptions import ResendError
    from resend.http_client_async import AsyncHTTPClient

DEFAULT_API_URL = "https://api.resend.com"


@functools.cache
def _httpx_client_class() -> Callable[[httpx.AsyncClient], AsyncHTTPClient]:
    """The SDK's async client interface over one shared ``httpx.AsyncClient``.

    The SDK's own httpx client opens a connection pool per request; this one keeps the
    connections (and their TLS sessions) between sends. Defined on first use, since it
    subclasses the SDK's interface.
    """
    from resend.http_client_async import AsyncHTTPClient  # noqa: PLC0415 - on first send

    class HttpxClient(AsyncHTTPClient):
        def __init__(self, client: httpx.AsyncClient) -> None:
            self.client = client

        async def request(  # noqa: PLR0917 - the SDK's signature
            self,
            method: str,
            url: str,
            headers: Mapping[str, str],
            json: dict[str, object] | list[object] | None = None,
            files: dict[str, Any] | None = None,
            data: dict[str, str] | None = None,
        ) -> tuple[bytes, int, Mapping[str, str]]:
            response = await self.client.request(
                method, url, headers=dict(headers), json=json, files=files, data=data
            )
            return response.content, response.status_code, response.headers

    return HttpxClient


class ResendProvider(EmailProvider):
    """Sends through Resend's API with its official SDK, an idempotency key on every send.

    Args:
        api_key: The Resend API key (``re_…``).
        api_url: The API's base URL (``RESEND_API_URL``); a local server in tests.
        timeout: Seconds one request may take.
        http_client: The ``httpx.AsyncClient`` to send with; one is made (and closed by
            :meth:`aclose`) when None.
    """

    name = "resend"

    def __init__(
        self,
        api_key: SecretStr | str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 15.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout
        # Made on the first send when not given: an httpx client loads the CA bundle, which
        # costs start-up time and memory that a service sending no email yet need not pay.
        self._http = http_client
        self._owns_client = http_client is None
        self._client: AsyncHTTPClient | None = None  # the SDK's view of _http, on first send

    def __repr__(self) -> str:
        return f"ResendProvider(api_url={self.api_url!r})"

    async def send(self, message: EmailMessage, *, idempotency_key: str) -> str:
        """Send ``message`` with ``POST /emails`` and the ``Idempotency-Key`` header.

        Raises:
            EmailDeliveryError: Resend refused it: a bad or restricted key, an invalid field,
                an unverified domain, the key reused with another message (4xx).
            EmailTransientError: Rate limited or over quota (429, with ``retry_after``), a
                concurrent request with the same key (409), Resend failing (5xx), or no
                connection.
        """
        import resend  # noqa: PLC0415 - the SDK loads on the first send (see the docstring)
        from resend.exceptions import ResendError  # noqa: PLC0415

        params = resend_params(message)
        options: resend.Emails.SendOptions = {"idempotency_key": idempotency_key}
        if self._client is None:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=self._timeout)
            self._client = _httpx_client_class()(self._http)
        # No await between these assignments and the SDK reading them (see the docstring).
        resend.api_key = self._api_key.get_secret_value()
        resend.api_url = self.api_url
        resend.default_async_http_client = self._client
        try:
            response = await resend.Emails.send_async(params, options)
        except ResendError as exc:
            raise _translated(exc) from exc
        return str(response["id"])

    async def aclose(self) -> None:
        """Take the client out of the SDK and close it, when the provider made it."""
        if self._client is not None:  # it sent, so the SDK is imported
            import resend  # noqa: PLC0415

            if resend.default_async_http_client is self._client:
                resend.default_async_http_client = resend._auto_async_http_client  # noqa: SLF001
        if self._owns_client and self._http is not None:
            await self._http.aclose()


def resend_params(message: EmailMessage) -> resend.Emails.SendParams:
    """The body of Resend's ``POST /emails`` for ``message``.

    Raises:
        InvalidMessageError: The message has no sender.
    """
    if message.from_ is None:
        raise InvalidMessageError(["from: no sender: pass from_ or set EMAIL_FROM"])
    params: resend.Emails.SendParams = {
        "from": message.from_,
        "to": list(message.to),
        "subject": message.subject,
        "text": message.text,
    }
    if message.html is not None:
        params["html"] = message.html
    if message.cc:
        params["cc"] = list(message.cc)
    if message.bcc:
        params["bcc"] = list(message.bcc)
    if message.reply_to:
        params["reply_to"] = list(message.reply_to)
    if message.headers:
        params["headers"] = dict(message.headers)
    if message.tags:
        params["tags"] = [{"name": name, "value": value} for name, value in message.tags.items()]
    if message.attachments:
        attachments: list[resend.Attachment] = []
        for attachment in message.attachments:
            item: resend.Attachment = {
                "filename": attachment.filename,
                "content": base64.b64encode(attachment.content).decode("ascii"),
                "content_type": attachment.media_type,
            }
            if attachment.content_id:
                item["content_id"] = attachment.content_id
            attachments.append(item)
        params["attachments"] = list(attachments)
    return params


def _translated(exc: ResendError) -> EmailDeliveryError | EmailTransientError:
    try:
        status = int(exc.code)
    except (TypeError, ValueError):
        status = 500
    name = exc.error_type
    text = f"Resend answered {status} {name}: {exc.message}"
    if name == "HttpClientError":
        text = f"Resend cannot be reached: {exc.message}"
    if status == 429:
        return EmailTransientError(
            text, provider="resend", status=status, retry_after=_retry_after(exc.headers)
        )
    # The SDK reports a failed connection (refused, reset, timed out) as a 500 of its own.
    if status >= 500 or name == "concurrent_idempotent_requests":
        return EmailTransientError(text, provider="resend", status=status)
    return EmailDeliveryError(text, provider="resend", status=status, code=name)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None  # an HTTP date: Resend sends seconds, so this is not Resend
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None
