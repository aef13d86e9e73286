from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from omnistack_core.database_url import (
    DatabaseURLError,
    connect_arguments,
    normalize_database_url,
)

PASSWORD = "p@ss:w%rd"  # every character that breaks naive URL parsing
ENCODED = "p%40ss%3Aw%25rd"

SCHEMES = ["postgres", "postgresql", "postgresql+asyncpg"]
QUERIES = [
    ("", {}),
    ("?sslmode=require", {"ssl": "require"}),
    ("?sslmode=disable", {"ssl": "disable"}),
    ("?sslmode=verify-full&connect_timeout=10", {"ssl": "verify-full", "connect_timeout": "10"}),
]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(("query", "expected_query"), QUERIES)
@pytest.mark.parametrize("password", [PASSWORD, ENCODED], ids=["raw", "percent-encoded"])
def test_postgres_urls_normalize_to_asyncpg_with_the_password_intact(
    scheme: str, query: str, expected_query: dict[str, str], password: str
) -> None:
    normalized = normalize_database_url(
        f"{scheme}://app_user:{password}@db.internal:6543/shop{query}"
    )

    url = make_url(normalized)
    assert url.drivername == "postgresql+asyncpg"
    assert url.username == "app_user"
    assert url.password == PASSWORD
    assert url.host == "db.internal"
    assert url.port == 6543
    assert url.database == "shop"
    assert dict(url.query) == expected_query


@pytest.mark.parametrize(
    ("raw", "host", "port", "database", "password"),
    [
        ("postgres://u@localhost/app", "localhost", None, "app", None),
        ("postgres://u:pw@[::1]:5433/app", "::1", 5433, "app", "pw"),
        ("postgresql://u:a/b@host/app", "host", None, "app", "a/b"),
        ("postgresql:///app", None, None, "app", None),
    ],
)
def test_unusual_but_valid_postgres_urls(
    raw: str, host: str | None, port: int | None, database: str, password: str | None
) -> None:
    url = make_url(normalize_database_url(raw))
    assert (url.host, url.port, url.database, url.password) == (host, port, database, password)


def test_several_hosts_become_repeated_host_parameters() -> None:
    url = make_url(normalize_database_url("postgres://u:p@h1:5432,h2:5433/app?sslmode=require"))
    assert url.query["host"] == ("h1:5432", "h2:5433")
    assert url.query["ssl"] == "require"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sqlite:///./dev.db", "sqlite+aiosqlite:///./dev.db"),
        ("sqlite+aiosqlite:////var/data/app.db", "sqlite+aiosqlite:////var/data/app.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ],
)
def test_sqlite_urls_use_aiosqlite(raw: str, expected: str) -> None:
    assert normalize_database_url(raw) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [("ssl=true", "require"), ("ssl=false", "disable"), ("ssl=prefer", "prefer")],
)
def test_asyncpg_ssl_spellings_are_accepted(query: str, expected: str) -> None:
    url = make_url(normalize_database_url(f"postgres://u:p@h/db?{query}"))
    assert url.query["ssl"] == expected


def test_channel_binding_prefer_is_dropped_since_asyncpg_negotiates_on_its_own() -> None:
    url = make_url(
        normalize_database_url("postgres://u:p@h/db?sslmode=require&channel_binding=prefer")
    )
    assert dict(url.query) == {"ssl": "require"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://u:secretpw@h/db", "unsupported scheme 'mysql'"),
        ("no-scheme-secretpw", "is not a URL"),
        ("postgres://u:secretpw@h:notaport/db", "port"),
        ("postgres://u:secretpw@h:70000/db", "port"),
        ("postgres://u:secretpw@h/db?sslmode=sometimes", "sslmode='sometimes'"),
        ("postgres://u:secretpw@h/db?sslmode=require&ssl=require", "both sslmode and ssl"),
        ("postgres://u:secretpw@h/db?channel_binding=require", "channel_binding=require"),
        ("postgres://u:secretpw@h/db?pgbouncer=true", "'pgbouncer'"),
        ("postgres://u:secretpw@h/db?connect_timeout=soon", "connect_timeout"),
    ],
)
def test_bad_urls_are_refused_without_repeating_the_password(raw: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message) as caught:
        normalize_database_url(raw)
    assert "secretpw" not in str(caught.value)


def test_connect_arguments_translate_libpq_parameters_for_asyncpg() -> None:
    query = make_url(
        normalize_database_url(
            "postgres://u:p@h/db?sslmode=require&connect_timeout=7&application_name=api"
            "&command_timeout=30"
        )
    ).query

    remaining, arguments = connect_arguments(query)

    assert remaining == {"ssl": "require", "command_timeout": "30"}
    assert arguments == {"timeout": 7.0, "server_settings": {"application_name": "api"}}


@pytest.fixture
def root_certificate(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "root.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_certificate_files_become_a_verifying_tls_context(root_certificate: Path) -> None:
    ca = root_certificate
    query = make_url(
        normalize_database_url(f"postgres://u:p@h/db?sslmode=verify-full&sslrootcert={ca}")
    ).query

    remaining, arguments = connect_arguments(query)

    context = arguments["ssl"]
    assert remaining == {}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_require_with_a_root_certificate_verifies_the_chain_but_not_the_host(
    root_certificate: Path,
) -> None:
    ca = root_certificate
    query = make_url(
        normalize_database_url(f"postgres://u:p@h/db?sslmode=require&sslrootcert={ca}")
    ).query

    context = connect_arguments(query)[1]["ssl"]

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False


def test_certificate_files_with_a_non_tls_mode_are_refused(tmp_path: Path) -> None:
    query = make_url(
        normalize_database_url("postgres://u:p@h/db?sslmode=prefer&sslrootcert=/x")
    ).query
    with pytest.raises(DatabaseURLError, match="ssl=prefer"):
        connect_arguments(query)
