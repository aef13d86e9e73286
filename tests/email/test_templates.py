from __future__ import annotations

from pathlib import Path

import pytest

from omnistack_core.email import (
    EmailModule,
    EmailTemplateError,
    EmailTemplates,
    MemoryProvider,
    render_email,
    send_email,
)
from tests.email.email_apps import SENDER, email_app, running

RECEIPT = {
    "product_name": "Acme",
    "name": "Ada",
    "receipt_number": "R-1001",
    "date": "2026-03-01",
    "items": [
        {"description": "Pro plan", "amount": "$20.00"},
        {"description": "Seats x2", "amount": "$10.00"},
    ],
    "total": "$30.00",
    "receipt_url": "https://acme.example.com/r/1001",
}


def test_the_default_welcome_email_renders() -> None:
    rendered = render_email(
        "welcome",
        {"product_name": "Acme", "name": "Ada", "action_url": "https://acme.example.com/start"},
    )

    assert rendered.subject == "Welcome to Acme"
    assert "Hi Ada," in rendered.html
    assert 'href="https://acme.example.com/start"' in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert rendered.text.startswith("Hi Ada,")
    assert "Get started: https://acme.example.com/start" in rendered.text


def test_the_default_receipt_email_renders() -> None:
    rendered = render_email("receipt", RECEIPT)

    assert rendered.subject == "Your Acme receipt R-1001"
    assert "Pro plan" in rendered.html
    assert "$30.00" in rendered.html
    assert "Pro plan: $20.00\nSeats x2: $10.00\nTotal: $30.00" in rendered.text


def test_html_is_autoescaped_and_text_is_not() -> None:
    rendered = render_email(
        "welcome", {"product_name": "Acme", "name": "<script>alert(1)</script>"}
    )

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "Hi <script>alert(1)</script>," in rendered.text  # plain text: nothing to run


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(EmailTemplateError, match="product_name"):
        render_email("welcome", {"name": "Ada"})


def test_an_unknown_email_is_an_error() -> None:
    with pytest.raises(EmailTemplateError, match=r"'nope\.subject\.txt' not found"):
        render_email("nope")


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content)
    return directory


def test_the_apps_folder_overrides_the_defaults(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "emails",
        {
            "welcome.subject.txt": "Hello from {{ product_name }}",
            "welcome.html": '{% extends "base.html" %}{% block content %}<p>Ours</p>{% endblock %}',
        },
    )
    templates = EmailTemplates([folder])

    rendered = templates.render("welcome", {"product_name": "Acme"})
    receipt = templates.render("receipt", RECEIPT)

    assert rendered.subject == "Hello from Acme"
    assert "<p>Ours</p>" in rendered.html
    assert "Acme" in rendered.html  # the library's base layout still wraps it
    assert rendered.text.startswith("Acme\n\nOurs")  # no welcome.txt of its own: derived
    assert receipt.subject == "Your Acme receipt R-1001"  # not overridden: the default


def test_app_emails_in_the_working_directory_is_found_by_default(
    isolated_environment: Path,
) -> None:
    write(
        isolated_environment / "app" / "emails",
        {"invite.subject.txt": "Join {{ team }}", "invite.html": "<p>Join {{ team }}</p>"},
    )

    rendered = render_email("invite", {"team": "Ops & Co"})

    assert rendered.subject == "Join Ops & Co"
    assert rendered.html == "<p>Join Ops &amp; Co</p>"
    assert rendered.text == "Join Ops & Co"


def test_a_syntax_error_names_the_template_and_line(tmp_path: Path) -> None:
    folder = write(tmp_path, {"broken.subject.txt": "Hi", "broken.html": "<p>\n{% if %}</p>"})

    with pytest.raises(EmailTemplateError, match=r"'broken.html', line 2"):
        EmailTemplates([folder]).render("broken")


def test_the_subject_is_one_line_whatever_the_template(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {"multi.subject.txt": "Hello\n  {{ who }}\r\nBcc: x@example.com", "multi.txt": "Body"},
    )
    folder_html = write(folder, {"multi.html": "<p>Body</p>"})

    rendered = EmailTemplates([folder_html]).render("multi", {"who": "Ada"})

    assert rendered.subject == "Hello Ada Bcc: x@example.com"


async def test_email_templates_dir_is_used_by_the_apps_sender(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "mail",
        {"hello.subject.txt": "Hi {{ name }}", "hello.html": "<p>Hi {{ name }}</p>"},
    )
    memory = MemoryProvider()
    app = email_app(EmailModule(provider=memory), email_templates_dir=folder, email_from=SENDER)

    async with running(app):
        rendered = EmailModule.of(app).templates.render("hello", {"name": "Ada"})
        await send_email(app, rendered.message(to="ada@example.com"))

    [sent] = memory.outbox
    assert sent.message.subject == "Hi Ada"
    assert sent.message.text == "Hi Ada"
