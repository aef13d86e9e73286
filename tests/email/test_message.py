from __future__ import annotations

import pytest

from omnistack_core.email import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    EmailMessage,
    InvalidMessageError,
    MemoryProvider,
    html_to_text,
    parse_address,
)
from omnistack_core.email.sender import EmailSender


def problems_of(**fields: object) -> tuple[str, ...]:
    values: dict[str, object] = {"to": "ada@example.com", "subject": "Hi", "text": "Hello"}
    values.update(fields)
    with pytest.raises(InvalidMessageError) as caught:
        EmailMessage(**values)  # type: ignore[arg-type]
    return caught.value.problems


def test_addresses_with_and_without_display_names_are_accepted_and_normalised() -> None:
    message = EmailMessage(
        to=["ada@EXAMPLE.com", "Grace Hopper <grace@example.com>"],
        cc='"Lovelace, Ada" <ada.l@example.com>',
        subject="Hi",
        text="Hello",
    )

    assert message.to == ("ada@example.com", "Grace Hopper <grace@example.com>")
    assert message.cc == ('"Lovelace, Ada" <ada.l@example.com>',)
    assert parse_address(message.cc[0]).name == "Lovelace, Ada"


def test_every_invalid_address_is_named_in_one_error() -> None:
    problems = problems_of(
        to=["ada@example.com", "bob@", "not an address"], bcc="carol@@example.com"
    )

    assert len(problems) == 3
    assert problems[0].startswith("to[1]: 'bob@' is not a valid email address")
    assert problems[1].startswith("to[2]: 'not an address' is not a valid email address")
    assert problems[2].startswith("bcc: 'carol@@example.com' is not a valid email address")


def test_the_error_message_lists_the_problems_for_a_person() -> None:
    with pytest.raises(InvalidMessageError) as caught:
        EmailMessage(to="nobody", subject="Hi", text="x")

    assert str(caught.value).startswith("The email cannot be sent (1 problem):\n  - to: 'nobody'")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "subject", ["Hi\r\nBcc: victim@example.com", "Hi\nthere", "Hi\rthere", "Hi\x00"]
)
def test_line_breaks_in_the_subject_are_refused(subject: str) -> None:
    assert problems_of(subject=subject) == (
        "subject: must be one line (no CR or LF: header injection)",
    )


def test_line_breaks_in_header_names_and_values_are_refused() -> None:
    problems = problems_of(
        headers={
            "X-Ok": "fine",
            "X-Evil": "a\r\nBcc: victim@example.com",
            "X-Bad\r\nBcc": "victim@example.com",
            "Has Space": "x",
        }
    )

    assert problems == (
        "headers['X-Evil']: the value must be a string of one line (no CR or LF: header injection)",
        (
            "headers: name 'X-Bad\\r\\nBcc' must be printable ASCII without spaces or colons "
            "(no CR or LF: header injection)"
        ),
        (
            "headers: name 'Has Space' must be printable ASCII without spaces or colons "
            "(no CR or LF: header injection)"
        ),
    )


def test_a_line_break_in_a_display_name_is_refused() -> None:
    [problem] = problems_of(to="Ada\r\nBcc: victim@example.com <ada@example.com>")

    assert "must not contain line breaks" in problem


def test_headers_the_message_sets_itself_are_refused() -> None:
    assert problems_of(headers={"Bcc": "victim@example.com"}) == (
        "headers: Bcc is set from the message's own fields",
    )


def test_attachments_over_the_limit_are_refused_with_the_sizes() -> None:
    half = b"x" * (MAX_ATTACHMENT_BYTES // 2)

    problems = problems_of(
        attachments=[Attachment("a.bin", half), Attachment("b.bin", half + b"!")]
    )

    assert problems == (
        (
            "attachments: 10.0 MiB in total; at most 10.0 MiB can be sent (link to larger "
            "files instead)"
        ),
    )


def test_attachments_up_to_the_limit_are_accepted() -> None:
    message = EmailMessage(
        to="ada@example.com",
        subject="Files",
        text="Attached.",
        attachments=[Attachment("a.bin", b"x" * MAX_ATTACHMENT_BYTES)],
    )

    assert message.attachments_size == MAX_ATTACHMENT_BYTES


def test_attachment_filenames_must_not_carry_header_breaks_or_paths() -> None:
    problems = problems_of(
        attachments=[Attachment("a\r\n.pdf", b"x"), Attachment("../etc/passwd", b"x")]
    )

    assert problems == (
        "attachments[0].filename: must not contain line breaks or slashes",
        "attachments[1].filename: must not contain line breaks or slashes",
    )


def test_tags_follow_resends_rule() -> None:
    problems = problems_of(tags={"category": "welcome", "bad name": "x", "ok": "bad value!"})

    assert problems == (
        "tags: name 'bad name' must be 1 to 256 ASCII letters, digits, _ or -",
        "tags['ok']: value 'bad value!' must be 1 to 256 ASCII letters, digits, _ or -",
    )


def test_a_message_needs_recipients_a_subject_and_a_body() -> None:
    problems = problems_of(to=[], subject=" ", text=None)

    assert problems == (
        "to: at least one recipient is needed",
        "subject: must be a non-empty string",
        "html, text: a body is needed (html, text or both)",
    )


def test_at_most_fifty_recipients() -> None:
    to = [f"user{i}@example.com" for i in range(51)]

    assert problems_of(to=to) == ("to: at most 50 recipients, not 51",)


def test_the_text_body_is_derived_from_the_html() -> None:
    html = """
    <html><head><title>T</title><style>p { color: red }</style></head>
    <body>
      <h1>Welcome,   Ada</h1>
      <p>Your account is <b>ready</b>.<br>Start here:
        <a href="https://app.example.com/start">open the app</a></p>
      <ul><li>One</li><li>Two &amp; three</li></ul>
      <script>alert(1)</script>
    </body></html>
    """

    message = EmailMessage(to="ada@example.com", subject="Hi", html=html)

    assert message.text == (
        "Welcome, Ada\n\n"
        "Your account is ready.\n"
        "Start here: open the app (https://app.example.com/start)\n\n"
        "- One\n"
        "- Two & three"
    )


def test_a_given_text_body_is_kept() -> None:
    message = EmailMessage(to="ada@example.com", subject="Hi", html="<p>A</p>", text="B")

    assert message.text == "B"


def test_replacing_the_html_derives_the_text_again_only_when_it_was_derived() -> None:
    derived = EmailMessage(to="ada@example.com", subject="Hi", html="<p>A</p>")
    given = EmailMessage(to="ada@example.com", subject="Hi", html="<p>A</p>", text="B")

    assert derived.replace(html="<p>C</p>").text == "C"
    assert given.replace(html="<p>C</p>").text == "B"


def test_links_whose_text_is_the_address_are_not_repeated() -> None:
    assert html_to_text('<a href="https://x.example.com">https://x.example.com</a>') == (
        "https://x.example.com"
    )


def test_the_dict_form_round_trips_and_keeps_the_content_key() -> None:
    message = EmailMessage(
        to=["ada@example.com"],
        subject="Receipt",
        html="<p>Thanks</p>",
        from_="Acme <hello@example.com>",
        reply_to="support@example.com",
        tags={"category": "receipt"},
        headers={"X-Entity-Ref-ID": "order-1"},
        attachments=[Attachment("r.pdf", b"%PDF-1.7 \x00\xff", "application/pdf")],
    )

    again = EmailMessage.from_dict(message.to_dict())

    assert again == message
    assert again.content_key() == message.content_key()
    assert again.attachments[0].content == b"%PDF-1.7 \x00\xff"


def test_the_content_key_changes_with_any_content() -> None:
    base = EmailMessage(to="ada@example.com", subject="Hi", text="Hello")

    keys = {
        base.content_key(),
        base.replace(subject="Hi!").content_key(),
        base.replace(to="bob@example.com").content_key(),
        base.replace(text="Hello!").content_key(),
        base.replace(attachments=[Attachment("a.txt", b"1")]).content_key(),
    }

    assert len(keys) == 5
    assert (
        base.content_key()
        == EmailMessage(to="ada@example.com", subject="Hi", text="Hello").content_key()
    )


async def test_an_invalid_message_never_reaches_the_provider() -> None:
    provider = MemoryProvider()
    sender = EmailSender(provider, default_from="hello@example.com")

    with pytest.raises(InvalidMessageError):
        await sender.send(EmailMessage(to="ada@example.com", subject="a\nb", text="x"))

    assert provider.outbox == []


async def test_without_a_sender_or_a_default_nothing_is_sent() -> None:
    provider = MemoryProvider()

    with pytest.raises(InvalidMessageError, match="no sender"):
        await EmailSender(provider).send(EmailMessage(to="ada@example.com", subject="Hi", text="x"))

    assert provider.outbox == []
