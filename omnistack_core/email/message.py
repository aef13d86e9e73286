"""The provider-neutral email message, checked before anything is sent.

An :class:`EmailMessage` is validated as it is built: every address (``ada@example.com`` or
``Ada Lovelace <ada@example.com>``), the subject and custom headers (no CR or LF: header
injection), tags, and the attachments' total size. Every problem is reported at once in one
:class:`~omnistack_core.email.InvalidMessageError`. A plain-text body is derived from the HTML
one when none is given, so every message reaches text-only clients and spam filters that
penalise HTML-only mail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from omnistack_core.email.errors import InvalidMessageError

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
"""Largest total size of a message's attachments (10 MiB). Resend takes 40 MB once base64
encoded, and many mailbox providers refuse messages over 20-25 MB: 10 MiB of files stays
under every one of those limits. Link to anything larger."""

MAX_RECIPIENTS = 50
"""Most addresses in ``to`` (Resend's limit per message)."""

MAX_SUBJECT_LENGTH = 998
"""RFC 5322's limit on a header line, which a subject must fit."""

# Headers the message model sets itself: letting callers set them too would send two.
RESERVED_HEADERS = frozenset(
    {
        "bcc",
        "cc",
        "content-transfer-encoding",
        "content-type",
        "from",
        "mime-version",
        "reply-to",
        "subject",
        "to",
    }
)

# RFC 5322 field names: printable US-ASCII except the colon.
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")
# Resend's rule for tag names and values.
_TAG = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_NAMED_ADDRESS = re.compile(r"(?P<name>.*?)\s*<(?P<email>[^<>]*)>")
_LINE_BREAKS = ("\r", "\n", "\x00")
# Characters that force a display name into quotes (RFC 5322 "specials").
_SPECIALS = frozenset('()<>[]:;@\\,."')


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: an address and an optional display name.

    Attributes:
        email: The address, its domain normalised (``ada@example.com``).
        name: The display name, or an empty string.
    """

    email: str
    name: str = ""

    def __str__(self) -> str:
        if not self.name:
            return self.email
        name = self.name
        if any(char in _SPECIALS for char in name):
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            name = f'"{escaped}"'
        return f"{name} <{self.email}>"


def parse_address(value: str) -> Address:
    """Parse and validate ``ada@example.com`` or ``Ada Lovelace <ada@example.com>``.

    Deliverability (DNS) is not checked: that would make every send wait on DNS.

    Args:
        value: The address as a caller wrote it.

    Returns:
        The address, its domain normalised (lower case, IDNA).

    Raises:
        ValueError: Why the value is not an address, in words for a person.
    """
    from email_validator import EmailNotValidError, validate_email  # noqa: PLC0415 - cold start

    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")  # noqa: TRY004 - one error type for callers
    if any(char in value for char in _LINE_BREAKS):
        raise ValueError("must not contain line breaks")
    text = value.strip()
    name = ""
    named = _NAMED_ADDRESS.fullmatch(text)
    if named:
        name = named["name"].strip()
        text = named["email"].strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if "<" in name or ">" in name:
            raise ValueError("the display name must not contain < or >")
    elif "<" in text or ">" in text:
        raise ValueError("must look like ada@example.com or Ada Lovelace <ada@example.com>")
    if not text:
        raise ValueError("is empty")
    try:
        validated = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return Address(validated.normalized, name)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message.

    Attributes:
        filename: The name the recipient sees.
        content: The file's bytes.
        content_type: Its media type; guessed from the filename when None.
        content_id: Makes it an inline attachment the HTML can show as ``<img src="cid:…">``.
    """

    filename: str
    content: bytes = field(repr=False)
    content_type: str | None = None
    content_id: str | None = None

    @property
    def media_type(self) -> str:
        """``content_type``, else a guess from the filename, else ``application/octet-stream``."""
        guessed, _ = mimetypes.guess_type(self.filename)
        return self.content_type or guessed or "application/octet-stream"

    def problems(self, where: str) -> list[str]:
        """What is wrong with this attachment, each naming ``where`` it is."""
        problems = []
        if not isinstance(self.content, bytes):
            problems.append(f"{where}.content: must be bytes")
        if not self.filename or len(self.filename) > 255:
            problems.append(f"{where}.filename: must be 1 to 255 characters")
        if _has_line_break(self.filename) or any(char in self.filename for char in "/\\"):
            problems.append(f"{where}.filename: must not contain line breaks or slashes")
        if self.content_type is not None and not _CONTENT_TYPE.fullmatch(self.content_type):
            problems.append(f"{where}.content_type: must look like type/subtype")
        if self.content_id is not None and (
            not self.content_id or _has_line_break(self.content_id) or "<" in self.content_id
        ):
            problems.append(f"{where}.content_id: must be a non-empty token without <, > or CR/LF")
        return problems


@dataclass(frozen=True, slots=True, init=False)
class EmailMessage:
    """An email, validated when it is built.

    Example::

        EmailMessage(
            to="ada@example.com",
            subject="Your receipt",
            html="<p>Thanks for your order.</p>",
            tags={"category": "receipt"},
        )

    Args:
        to: One address or several (at most 50).
        subject: One line of text.
        html: The HTML body.
        text: The plain-text body; derived from ``html`` when None.
        from_: The sender; ``EMAIL_FROM`` when None.
        cc: Copies.
        bcc: Blind copies.
        reply_to: Where replies go.
        tags: Name/value pairs providers attach to the email and its events (letters,
            digits, ``_`` and ``-``).
        headers: Extra headers (``List-Unsubscribe``...); not the ones the model sets.
        attachments: Files, at most 10 MiB in total.

    Raises:
        InvalidMessageError: Listing every problem: an address that is not one, a line break
            in the subject or a header, too many recipients, attachments too large...
    """

    to: tuple[str, ...]
    subject: str
    html: str | None
    text: str
    from_: str | None
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    reply_to: tuple[str, ...]
    tags: Mapping[str, str]
    headers: Mapping[str, str]
    attachments: tuple[Attachment, ...]
    _text_derived: bool = field(repr=False, compare=False)

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        subject: str,
        html: str | None = None,
        text: str | None = None,
        from_: str | None = None,
        cc: str | Sequence[str] = (),
        bcc: str | Sequence[str] = (),
        reply_to: str | Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        problems: list[str] = []
        recipients = _addresses("to", to, problems)
        if not recipients and not any(p.startswith("to") for p in problems):
            problems.append("to: at least one recipient is needed")
        if len(recipients) > MAX_RECIPIENTS:
            problems.append(f"to: at most {MAX_RECIPIENTS} recipients, not {len(recipients)}")
        sender = None
        if from_ is not None:
            sender_list = _addresses("from", [from_], problems, indexed=False)
            sender = sender_list[0] if sender_list else None
        _check_subject(subject, problems)
        if not html and not text:
            problems.append("html, text: a body is needed (html, text or both)")
        derived = False
        if text is None and html is not None:
            text, derived = html_to_text(html), True
        values: dict[str, Any] = {
            "to": recipients,
            "subject": subject.strip() if isinstance(subject, str) else subject,
            "html": html,
            "text": text or "",
            "from_": sender,
            "cc": _addresses("cc", cc, problems),
            "bcc": _addresses("bcc", bcc, problems),
            "reply_to": _addresses("reply_to", reply_to, problems),
            "tags": _checked_tags(tags or {}, problems),
            "headers": _checked_headers(headers or {}, problems),
            "attachments": _checked_attachments(attachments, problems),
            "_text_derived": derived,
        }
        if problems:
            raise InvalidMessageError(problems)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the message goes to: ``to``, ``cc`` and ``bcc``."""
        return (*self.to, *self.cc, *self.bcc)

    @property
    def attachments_size(self) -> int:
        """The attachments' total size in bytes."""
        return sum(len(attachment.content) for attachment in self.attachments)

    def replace(self, **changes: Any) -> EmailMessage:
        """A copy with ``changes`` applied (field names as in the constructor), validated.

        A text body that was derived from the HTML is derived again from a new ``html``.
        """
        values = {name: getattr(self, name) for name in _FIELDS}
        if "html" in changes and "text" not in changes and self._text_derived:
            values["text"] = None
        values.update(changes)
        return EmailMessage(**values)

    def to_dict(self) -> dict[str, Any]:
        """The message as JSON data (attachments base64-encoded), for a job's arguments."""
        return {
            "from": self.from_,
            "to": list(self.to),
            "cc": list(self.cc),
            "bcc": list(self.bcc),
            "reply_to": list(self.reply_to),
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "tags": dict(self.tags),
            "headers": dict(self.headers),
            "attachments": [
                {
                    "filename": attachment.filename,
                    "content": base64.b64encode(attachment.content).decode("ascii"),
                    "content_type": attachment.content_type,
                    "content_id": attachment.content_id,
                }
                for attachment in self.attachments
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmailMessage:
        """Rebuild (and validate again) a message from :meth:`to_dict`'s output.

        Raises:
            InvalidMessageError: The data does not make a valid message.
        """
        attachments = []
        for index, item in enumerate(data.get("attachments") or ()):
            try:
                content = base64.b64decode(item["content"], validate=True)
            except (KeyError, TypeError, binascii.Error):
                raise InvalidMessageError(
                    [f"attachments[{index}].content: must be base64"]
                ) from None
            attachments.append(
                Attachment(
                    item.get("filename", ""),
                    content,
                    item.get("content_type"),
                    item.get("content_id"),
                )
            )
        return cls(
            from_=data.get("from"),
            to=data.get("to") or (),
            cc=data.get("cc") or (),
            bcc=data.get("bcc") or (),
            reply_to=data.get("reply_to") or (),
            subject=data.get("subject", ""),
            html=data.get("html"),
            text=data.get("text"),
            tags=data.get("tags") or {},
            headers=data.get("headers") or {},
            attachments=attachments,
        )

    def content_key(self) -> str:
        """An idempotency key derived from everything the message says.

        Two messages with the same sender, recipients, subject, bodies, tags, headers and
        attachments get the same key; change any of them and the key changes.
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "email-" + hashlib.sha256(canonical.encode()).hexdigest()


_FIELDS = (
    "to",
    "subject",
    "html",
    "text",
    "from_",
    "cc",
    "bcc",
    "reply_to",
    "tags",
    "headers",
    "attachments",
)


def _has_line_break(value: str) -> bool:
    return any(char in value for char in _LINE_BREAKS)


def _addresses(
    where: str, value: str | Iterable[str], problems: list[str], *, indexed: bool = True
) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    parsed = []
    for index, item in enumerate(items):
        label = f"{where}[{index}]" if indexed and len(items) > 1 else where
        try:
            parsed.append(str(parse_address(item)))
        except ValueError as exc:
            problems.append(f"{label}: {item!r} is not a valid email address: {exc}")
    return tuple(parsed)


def _check_subject(subject: object, problems: list[str]) -> None:
    if not isinstance(subject, str) or not subject.strip():
        problems.append("subject: must be a non-empty string")
    elif _has_line_break(subject):
        problems.append("subject: must be one line (no CR or LF: header injection)")
    elif len(subject) > MAX_SUBJECT_LENGTH:
        problems.append(f"subject: at most {MAX_SUBJECT_LENGTH} characters")


def _checked_tags(tags: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    for name, value in tags.items():
        if not isinstance(name, str) or not _TAG.fullmatch(name):
            problems.append(f"tags: name {name!r} must be 1 to 256 ASCII letters, digits, _ or -")
        if not isinstance(value, str) or not _TAG.fullmatch(value):
            problems.append(
                f"tags[{name!r}]: value {value!r} must be 1 to 256 ASCII letters, digits, _ or -"
            )
    return dict(tags)


def _checked_headers(headers: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            problems.append(
                f"headers: name {name!r} must be printable ASCII without spaces or colons "
                "(no CR or LF: header injection)"
            )
            continue
        if name.lower() in RESERVED_HEADERS:
            problems.append(f"headers: {name} is set from the message's own fields")
        if name.lower() in seen:
            problems.append(f"headers: {name} is given twice")
        seen.add(name.lower())
        if not isinstance(value, str) or _has_line_break(value):
            problems.append(
                f"headers[{name!r}]: the value must be a string of one line "
                "(no CR or LF: header injection)"
            )
    return dict(headers)


def _checked_attachments(
    attachments: Sequence[Attachment], problems: list[str]
) -> tuple[Attachment, ...]:
    total = 0
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, Attachment):
            problems.append(f"attachments[{index}]: must be an Attachment")
            continue
        problems.extend(attachment.problems(f"attachments[{index}]"))
        if isinstance(attachment.content, bytes):
            total += len(attachment.content)
    if total > MAX_ATTACHMENT_BYTES:
        problems.append(
            f"attachments: {_megabytes(total)} in total; at most "
            f"{_megabytes(MAX_ATTACHMENT_BYTES)} can be sent (link to larger files instead)"
        )
    return tuple(attachments)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


# HTML to text ---------------------------------------------------------------------------------

_SKIPPED = frozenset({"head", "script", "style", "template", "title", "noscript"})
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "div",
        "dl",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")


class _TextExtractor(HTMLParser):
    """Collects readable text: blocks become paragraphs, links keep their address."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._preformatted = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            if tag == "pre":
                self._preformatted += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "hr":
            self.parts.append("\n\n---\n\n")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            if tag == "pre":
                self._preformatted = max(0, self._preformatted - 1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.parts[start:]).strip()
            if href and not href.startswith(("#", "mailto:")) and href != label:
                self.parts.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        self.parts.append(data if self._preformatted else _WHITESPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """A plain-text rendering of ``html``: paragraphs, line breaks, list items, link targets.

    Args:
        html: An HTML document or fragment.

    Returns:
        The text, without markup, scripts or styles.
    """
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = [line.strip() for line in "".join(extractor.parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
