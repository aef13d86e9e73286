"""Stripe's form parameters: decoding its brackets, and reading each value as Stripe checks it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from omnistack_core.testing._stripe.errors import StripeError

_FORM_KEY = re.compile(r"(?P<head>[^\[\]]+)(?P<tail>(?:\[[^\[\]]*\])*)")
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")


def request_params(method: str, query: str, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """The parameters of a request: its query, and a POST's form body."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if method == "POST" and raw:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            raise StripeError(
                400,
                f"Invalid request: unsupported Content-Type {content_type}. If error "
                "persists and you need assistance, please contact support@stripe.com.",
            )
        pairs += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return decode_form(pairs)


def decode_form(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Decode form fields in Stripe's bracket notation into nested dicts and lists.

    ``line_items[0][price]=p`` gives ``{"line_items": [{"price": "p"}]}``; ``expand[]=a``
    appends; a hash whose keys are all indexes becomes a list, except under ``metadata``,
    whose keys are the user's.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _FORM_KEY.fullmatch(key)
        parts = [key] if match is None else [match["head"], *_BRACKETED.findall(match["tail"])]
        node = root
        for depth, part in enumerate(parts):
            name = str(len(node)) if part == "" else part
            if depth == len(parts) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return {name: _listed(value, name == "metadata") for name, value in root.items()}


def _listed(value: Any, in_metadata: bool) -> Any:  # noqa: FBT001 - private, positional
    if not isinstance(value, dict):
        return value
    converted = {k: _listed(v, in_metadata or k == "metadata") for k, v in value.items()}
    if not in_metadata and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def refuse_unknown(params: dict[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    """``parameter_unknown`` for the first parameter not in ``allowed`` (inside ``prefix``)."""
    for name in params:
        if name not in allowed:
            full = f"{prefix}[{name}]" if prefix else name
            raise StripeError(
                400, f"Received unknown parameter: {full}", code="parameter_unknown", param=full
            )


def _param_name(name: str, prefix: str) -> str:
    return f"{prefix}[{name}]" if prefix else name


def optional_string(params: dict[str, Any], name: str, prefix: str = "") -> str | None:
    """The string ``name``; None when absent or empty."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StripeError(400, "Invalid string: {...}", param=_param_name(name, prefix))
    return value


def optional_hash(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The hash ``name`` (``subscription_data[...]``); empty when absent."""
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid object", param=name)
    return value


def optional_metadata(params: dict[str, Any], name: str, prefix: str = "") -> dict[str, str]:
    """The metadata hash ``name``, its emptied keys dropped; empty when absent."""
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StripeError(400, "Invalid object", param=_param_name(name, prefix))
    # An empty value unsets the key, as it does at Stripe.
    return {key: entry for key, entry in value.items() if entry != ""}


def optional_integer(params: dict[str, Any], name: str, prefix: str = "") -> int | None:
    """The integer ``name``; None when absent."""
    value = optional_string(params, name, prefix)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise StripeError(
            400,
            f"Invalid integer: {value}",
            code="parameter_invalid_integer",
            param=_param_name(name, prefix),
        ) from None


def optional_boolean(params: dict[str, Any], name: str) -> bool | None:
    """The boolean ``name`` (``true`` or ``false``); None when absent."""
    value = optional_string(params, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", param=name)
    return value == "true"


def optional_enum(params: dict[str, Any], name: str, choices: Sequence[str]) -> str | None:
    """The value ``name``, one of ``choices``; None when absent."""
    value = optional_string(params, name)
    if value is not None and value not in choices:
        listed = ", ".join(choices[:-1]) + f", or {choices[-1]}"
        raise StripeError(400, f"Invalid {name}: must be one of {listed}", param=name)
    return value


def optional_url(params: dict[str, Any], name: str) -> str | None:
    """The http(s) URL ``name``; None when absent."""
    value = optional_string(params, name)
    if value is not None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise StripeError(400, "Not a valid URL", code="url_invalid", param=name)
    return value
