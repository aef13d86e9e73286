"""Turn ``DATABASE_URL`` as platforms hand it out into what the async drivers accept.

Railway, Render, Fly and Heroku-style hosts give ``postgres://`` or ``postgresql://`` URLs with
libpq query parameters such as ``sslmode=require``. SQLAlchemy needs ``postgresql+asyncpg://``,
and asyncpg takes keyword arguments, not libpq's query string: it spells ``sslmode`` as ``ssl``,
wants ``connect_timeout`` as a number called ``timeout`` and certificate files as an SSL context.

This module is standard library only, so settings can validate the URL at start-up without
importing SQLAlchemy. Error messages never contain the URL: it usually holds a password.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}

# libpq parameters that are translated into asyncpg connect arguments by connect_arguments().
_TLS_FILE_PARAMETERS = ("sslrootcert", "sslcert", "sslkey", "sslpassword")
_TRANSLATED_PARAMETERS = {"ssl", "connect_timeout", "application_name", *_TLS_FILE_PARAMETERS}
# Keyword arguments asyncpg.connect() and SQLAlchemy's asyncpg dialect take as they are.
_PASSTHROUGH_PARAMETERS = {
    "command_timeout",
    "direct_tls",
    "host",
    "krbsrvname",
    "gsslib",
    "max_cacheable_statement_size",
    "max_cached_statement_lifetime",
    "passfile",
    "prepared_statement_cache_size",
    "statement_cache_size",
    "target_session_attrs",
}
_NUMERIC_PARAMETERS = {
    "command_timeout",
    "connect_timeout",
    "max_cacheable_statement_size",
    "max_cached_statement_lifetime",
    "prepared_statement_cache_size",
    "statement_cache_size",
}


class DatabaseURLError(ValueError):
    """The URL cannot be used; the message describes why without repeating the URL."""


def normalize_database_url(raw: str) -> str:
    """Return the SQLAlchemy URL for a database URL in any of the forms platforms use.

    ``postgres://`` and ``postgresql://`` become ``postgresql+asyncpg://``; ``sqlite://``
    becomes ``sqlite+aiosqlite://``; ``sslmode=`` becomes asyncpg's ``ssl=``. User name and
    password are percent-decoded and encoded again, so a password with ``@``, ``:`` or ``%``
    works whether the platform encoded it or not (the last ``@`` ends the credentials).

    Args:
        raw: The URL as given, e.g. ``postgres://u:p@host:5432/db?sslmode=require``.

    Returns:
        The normalised URL, e.g. ``postgresql+asyncpg://u:p@host:5432/db?ssl=require``.

    Raises:
        DatabaseURLError: The scheme is unsupported, the port is not a number, or a query
            parameter is unknown or has an invalid value.
    """
    scheme, separator, rest = raw.strip().partition("://")
    if not separator:
        raise DatabaseURLError("is not a URL: expected scheme://user:password@host:port/database")
    scheme = scheme.lower()
    if scheme in _SQLITE_SCHEMES:
        return f"sqlite+aiosqlite://{rest}"
    if scheme not in _POSTGRES_SCHEMES:
        raise DatabaseURLError(
            f"has the unsupported scheme {scheme!r}: use postgres://, postgresql://, "
            "postgresql+asyncpg:// or sqlite+aiosqlite://"
        )
    location, _, query = rest.partition("?")
    credentials, at, address = location.rpartition("@")
    if not at:
        address = location
    hosts, _, database = address.partition("/")
    username, colon, password = credentials.partition(":")

    authority = quote(unquote(username), safe="")
    if colon:
        authority += ":" + quote(unquote(password), safe="")
    if at:
        authority += "@"
    parameters = _asyncpg_query(parse_qsl(query, keep_blank_values=True))
    if "," in hosts:
        # Several hosts (failover): SQLAlchemy's asyncpg dialect takes them as repeated host=.
        parameters = [("host", _checked_host(host)) for host in hosts.split(",")] + parameters
    else:
        authority += _checked_host(hosts)
    url = f"postgresql+asyncpg://{authority}/{quote(unquote(database), safe='')}"
    return f"{url}?{urlencode(parameters)}" if parameters else url


def _checked_host(host_and_port: str) -> str:
    port = ""
    if host_and_port.startswith("["):  # [IPv6]:port
        port = host_and_port[host_and_port.find("]") + 2 :]
    elif ":" in host_and_port:
        port = host_and_port.rpartition(":")[2]
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise DatabaseURLError("has a port that is not a number between 1 and 65535")
    return host_and_port


def _asyncpg_query(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = [key for key, _ in pairs]
    if "ssl" in keys and "sslmode" in keys:
        raise DatabaseURLError("sets both sslmode and ssl: keep one")
    result: list[tuple[str, str]] = []
    for key, value in pairs:
        if key in ("sslmode", "ssl"):
            result.append(("ssl", _ssl_mode(key, value)))
            continue
        if key == "channel_binding":
            if value == "require":
                raise DatabaseURLError(
                    "asks for channel_binding=require, which asyncpg cannot do: remove it "
                    "(sslmode still protects the connection)"
                )
            continue  # prefer/disable: asyncpg negotiates SCRAM on its own
        if key not in _TRANSLATED_PARAMETERS | _PASSTHROUGH_PARAMETERS:
            raise DatabaseURLError(f"has the query parameter {key!r}, which asyncpg does not take")
        if key in _NUMERIC_PARAMETERS and not _is_number(value):
            raise DatabaseURLError(f"has a {key} that is not a number")
        result.append((key, value))
    return result


def _ssl_mode(key: str, value: str) -> str:
    value = value.lower()
    if key == "ssl" and value in ("true", "1"):
        return "require"
    if key == "ssl" and value in ("false", "0"):
        return "disable"
    if value not in SSL_MODES:
        raise DatabaseURLError(f"has {key}={value!r}; expected one of {', '.join(SSL_MODES)}")
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def connect_arguments(query: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a normalised Postgres URL's query into what stays in the URL and asyncpg arguments.

    ``connect_timeout`` becomes the number ``timeout``; ``application_name`` a server setting;
    certificate files (``sslrootcert``, ``sslcert``, ``sslkey``, ``sslpassword``) an
    :class:`ssl.SSLContext` built the way libpq reads them.

    Args:
        query: The query of a URL returned by :func:`normalize_database_url`.

    Returns:
        The query to keep in the URL, and the keyword arguments for ``asyncpg.connect``.
    """
    remaining = dict(query)
    arguments: dict[str, Any] = {}
    if "connect_timeout" in remaining:
        arguments["timeout"] = float(remaining.pop("connect_timeout"))
    if "application_name" in remaining:
        arguments["server_settings"] = {"application_name": remaining.pop("application_name")}
    files = {key: remaining.pop(key) for key in _TLS_FILE_PARAMETERS if key in remaining}
    if files:
        arguments["ssl"] = _tls_context(remaining.pop("ssl", "verify-full"), files)
    return remaining, arguments


def _tls_context(mode: str, files: Mapping[str, str]) -> ssl.SSLContext:
    if mode in ("disable", "allow", "prefer"):
        raise DatabaseURLError(f"gives certificate files with ssl={mode}: use require or verify-*")
    context = ssl.create_default_context(cafile=files.get("sslrootcert"))
    if mode == "require" and "sslrootcert" not in files:
        # libpq's require without a root certificate encrypts but does not verify the server.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode in ("require", "verify-ca"):
        # libpq's require with a root certificate behaves as verify-ca: chain, not host name.
        context.check_hostname = False
    if "sslcert" in files:
        context.load_cert_chain(files["sslcert"], files.get("sslkey"), files.get("sslpassword"))
    return context
