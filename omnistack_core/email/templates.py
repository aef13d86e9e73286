"""Email templates: Jinja2, autoescaped, the app's own folder first, then the library's.

An email named ``welcome`` is up to three files:

* ``welcome.subject.txt``: the subject (one line; whitespace is collapsed);
* ``welcome.html``: the HTML body, usually ``{% extends "base.html" %}``;
* ``welcome.txt``: the plain-text body, taken from the folder the HTML came from; derived
  from the HTML when that folder has none (so overriding only the HTML keeps them in step).

Each file is looked up in the app's folders first, then in the library's.

HTML templates are autoescaped, so a value like ``<script>`` in the context is shown, not run;
text and subject templates are not (they are not HTML). A variable the template uses but the
context lacks is an error rather than an empty string: an email that says "Hello ," is sent
once and cannot be taken back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnistack_core.email.errors import EmailTemplateError
from omnistack_core.email.message import Attachment, EmailMessage, html_to_text

if TYPE_CHECKING:
    import jinja2

_WHITESPACE = re.compile(r"\s+")
_SOURCE_PREFIX = "@source"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A rendered template.

    Attributes:
        subject: The subject line.
        html: The HTML body.
        text: The plain-text body.
    """

    subject: str
    html: str
    text: str

    def message(
        self,
        *,
        to: str | Sequence[str],
        from_: str | None = None,
        cc: str | Sequence[str] = (),
        bcc: str | Sequence[str] = (),
        reply_to: str | Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> EmailMessage:
        """An :class:`~omnistack_core.email.EmailMessage` with this subject and these bodies."""
        return EmailMessage(
            to=to,
            subject=self.subject,
            html=self.html,
            text=self.text,
            from_=from_,
            cc=cc,
            bcc=bcc,
            reply_to=reply_to,
            tags=tags,
            headers=headers,
            attachments=attachments,
        )


class EmailTemplates:
    """Finds and renders email templates.

    Args:
        directories: Folders searched first, in order (the app's ``app/emails``).
        include_defaults: Search the library's templates (``base.html``, ``welcome``,
            ``receipt``) last.
    """

    def __init__(
        self, directories: Sequence[Path | str] = (), *, include_defaults: bool = True
    ) -> None:
        self.directories = tuple(Path(directory) for directory in directories)
        self.include_defaults = include_defaults

    @cached_property
    def _sources(self) -> list[jinja2.BaseLoader]:
        # Jinja loads when an email is first rendered, not when the module starts.
        import jinja2  # noqa: PLC0415

        sources: list[jinja2.BaseLoader] = [
            jinja2.FileSystemLoader(str(directory)) for directory in self.directories
        ]
        if self.include_defaults:
            sources.append(jinja2.PackageLoader("omnistack_core.email", "templates"))
        return sources

    @cached_property
    def environment(self) -> jinja2.Environment:
        """The Jinja environment the templates render in, built on first use."""
        import jinja2  # noqa: PLC0415 - loaded with the sources

        # Each source is also reachable on its own, under a prefix no file name starts with,
        # so that an email's text body can be taken from the folder its HTML came from.
        by_source = jinja2.PrefixLoader(
            {f"{_SOURCE_PREFIX}{index}": source for index, source in enumerate(self._sources)}
        )
        return jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.ChoiceLoader(self._sources), by_source]),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "xml"), default_for_string=True, default=False
            ),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, context: Mapping[str, Any] | None = None) -> RenderedEmail:
        """Render the email ``name`` with ``context``.

        Args:
            name: The email's name: ``welcome`` renders ``welcome.subject.txt``,
                ``welcome.html`` and ``welcome.txt`` (or text derived from the HTML).
            context: The values the templates use.

        Returns:
            The subject and both bodies.

        Raises:
            EmailTemplateError: A template is missing, does not parse, or uses a value the
                context lacks.
        """
        import jinja2  # noqa: PLC0415 - loaded with the environment

        values = dict(context or {})
        try:
            subject = self._render(f"{name}.subject.txt", values)
            html = self._render(f"{name}.html", values)
            # The text body only from the folder the HTML came from: an app that overrides
            # welcome.html alone must not send the library's welcome.txt beside it.
            text_name = f"{self._source_of(f'{name}.html')}/{name}.txt"
            try:
                text = self._render(text_name, values)
            except jinja2.TemplateNotFound as exc:
                if exc.name != text_name:
                    raise  # a template the text one includes is missing: not the same thing
                text = html_to_text(html)
        except jinja2.TemplateNotFound as exc:
            raise EmailTemplateError(
                f"email template {exc.name!r} not found (searched "
                f"{', '.join(map(str, self.directories)) or 'no app folder'} and the defaults)"
            ) from None
        except jinja2.UndefinedError as exc:
            raise EmailTemplateError(f"email {name!r}: {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise EmailTemplateError(
                f"email template {exc.name or exc.filename!r}, line {exc.lineno}: {exc.message}"
            ) from None
        except jinja2.TemplateError as exc:
            raise EmailTemplateError(f"email {name!r}: {exc}") from None
        return RenderedEmail(_WHITESPACE.sub(" ", subject).strip(), html, text.strip())

    def _source_of(self, template_name: str) -> str:
        import jinja2  # noqa: PLC0415 - loaded with the environment

        for index, source in enumerate(self._sources):
            try:
                source.get_source(self.environment, template_name)
            except jinja2.TemplateNotFound:
                continue
            return f"{_SOURCE_PREFIX}{index}"
        raise jinja2.TemplateNotFound(template_name)

    def _render(self, template_name: str, values: dict[str, Any]) -> str:
        return self.environment.get_template(template_name).render(values)


@lru_cache(maxsize=8)
def _templates_for(directories: tuple[Path, ...]) -> EmailTemplates:
    return EmailTemplates(directories)


def render_email(
    name: str, context: Mapping[str, Any] | None = None, *, templates: EmailTemplates | None = None
) -> RenderedEmail:
    """Render the email template ``name``: subject, HTML and text.

    Args:
        name: The email's name (``welcome``, ``receipt``, or one of the app's).
        context: The values its templates use.
        templates: Where to look; by default the app's ``app/emails`` folder (relative to the
            working directory) when it exists, then the library's templates. Inside a running
            app, pass ``EmailModule.of(app).templates`` to honour ``EMAIL_TEMPLATES_DIR``.

    Returns:
        The rendered email; ``.message(to=...)`` makes it an
        :class:`~omnistack_core.email.EmailMessage`.

    Raises:
        EmailTemplateError: A template is missing, does not parse, or lacks a value.
    """
    if templates is None:
        default = Path("app/emails")
        templates = _templates_for((default.resolve(),) if default.is_dir() else ())
    return templates.render(name, context)
