from __future__ import annotations

import io
import json
import logging
import re

import pytest

from omnistack_core import load_settings
from omnistack_core.observability import configure_logging
from omnistack_core.observability.logs import ACCESS_LOGGER, AccessFields, JsonFormatter
from omnistack_core.request_context import request_id_var

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_fields_log_pipelines_index() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json", service_name="shop-api"), stream=stream)
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("shop.orders").warning("order %s held", 7, extra={"order_id": 7})
    finally:
        request_id_var.reset(token)

    [line] = lines(stream)
    record = json.loads(line)
    assert ISO_UTC.fullmatch(record["timestamp"])
    assert record["level"] == "WARNING"
    assert record["message"] == "order 7 held"
    assert record["logger"] == "shop.orders"
    assert record["service"] == "shop-api"
    assert record["environment"] == "development"
    assert record["request_id"] == "req-42"
    assert record["order_id"] == 7


def test_json_is_the_default_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/app")
    stream = io.StringIO()
    configure_logging(load_settings(), stream=stream)

    logging.getLogger("any").info("hello")

    assert json.loads(lines(stream)[0])["environment"] == "production"


def test_json_lines_include_the_exception() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream=stream)

    try:
        raise ValueError("bad input")  # noqa: TRY301 - the test needs a live traceback
    except ValueError:
        logging.getLogger("jobs").exception("job failed")

    [line] = lines(stream)
    record = json.loads(line)
    assert record["message"] == "job failed"
    assert "ValueError: bad input" in record["exception"]
    assert record["request_id"] is None


def test_text_lines_are_single_lines_even_with_newlines_in_the_message() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="text"), stream=stream)
    token = request_id_var.set("req-7")
    try:
        logging.getLogger("app").info("forged\r\nINFO admin logged in", extra={"user": "ada"})
    finally:
        request_id_var.reset(token)

    [line] = lines(stream)
    assert line.endswith("app [req-7] forged\\r\\nINFO admin logged in user=ada")
    assert " INFO    " in line


def test_configuring_twice_keeps_one_handler_and_leaves_others_alone() -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    first, second = io.StringIO(), io.StringIO()

    configure_logging(load_settings(log_format="json"), stream=first)
    configure_logging(load_settings(log_format="json"), stream=second)
    logging.getLogger("app").warning("once")

    assert other in root.handlers
    assert lines(first) == []
    assert len(lines(second)) == 1
    root.removeHandler(other)


def test_level_comes_from_log_level() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_level="warning", log_format="json"), stream=stream)

    logging.getLogger("app").info("dropped")
    logging.getLogger("app").warning("kept")

    assert [json.loads(line)["message"] for line in lines(stream)] == ["kept"]


def test_uvicorn_logs_go_through_our_handler_and_its_access_log_is_off() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn_error.propagate = False
    stream = io.StringIO()

    configure_logging(load_settings(log_format="json"), stream=stream)
    uvicorn_error.info("Started server process")
    logging.getLogger("uvicorn.access").info("GET / 200")

    assert [json.loads(line)["message"] for line in lines(stream)] == ["Started server process"]
    assert uvicorn_error.handlers == []


@pytest.mark.parametrize(("echo", "level"), [(True, logging.INFO), (False, logging.WARNING)])
def test_db_echo_sets_the_sqlalchemy_engine_level(echo: bool, level: int) -> None:
    configure_logging(load_settings(db_echo=echo), stream=io.StringIO())

    assert logging.getLogger("sqlalchemy.engine").level == level


def test_json_lines_drop_uvicorns_colour_copy_of_the_message() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream=stream)

    # What uvicorn logs as it starts: its message, plus a copy with terminal colour codes.
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s",
        "http://0.0.0.0:8000",
        extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m"},
    )

    [line] = lines(stream)
    assert "color_message" not in json.loads(line)
    assert json.loads(line)["message"] == "Uvicorn running on http://0.0.0.0:8000"


def test_json_lines_carry_no_terminal_escape_codes() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream=stream)

    logging.getLogger("shop").warning(
        "\x1b[31mred\x1b[0m alert",
        extra={"detail": ["\x1b[1mbold\x1b[22m", {"k": "\x1b]0;title\x07x"}]},
    )

    [line] = lines(stream)
    record = json.loads(line)
    assert "\\u001b" not in line
    assert record["message"] == "red alert"
    assert record["detail"] == ["bold", {"k": "x"}]


@pytest.mark.parametrize(
    ("path", "request_id", "client"),
    [
        ("/items/7", "0123456789abcdef0123456789abcdef", "10.0.0.1"),
        ('/q"uote\\back/slash', None, None),
        ("/caf\u00e9/\u2603/\U0001f600", "req-1", "::1"),
        ("/control/\x00\x07\t\n\r", "req-2", "203.0.113.9"),
        ("/escape/\x1b[31mred\x1b[0m", "req-3", "10.0.0.2"),
    ],
)
@pytest.mark.parametrize("duration_ms", [0.0, 1.25, 12345.67, 0.1])
def test_a_json_access_line_is_the_line_its_record_would_give(
    path: str, request_id: str | None, client: str | None, duration_ms: float
) -> None:
    formatter = JsonFormatter('shop "api"', "production")
    access = AccessFields(
        method="GET",
        route="/items/{item_id}",
        path=path,
        status=404,
        duration_ms=duration_ms,
        client=client,
    )

    direct = formatter.render_access(1_800_000_000.5, request_id, access)
    via_record = formatter.render(
        ACCESS_LOGGER,
        "INFO",
        1_800_000_000.5,
        access.message(),
        request_id=request_id,
        extras=access.extras(),
    )

    assert direct == via_record
    assert "\x1b" not in json.loads(direct)["path"]
