"""Supabase's JWKS over HTTPS on 127.0.0.1, for a service running with production settings.

Production refuses an ``http://`` ``SUPABASE_PROJECT_URL``, and ``LocalIssuer`` serves plain
HTTP; so its keys are published here behind TLS with a self-signed certificate, which the
service trusts through ``SSL_CERT_FILE`` (httpx reads it). Tokens are signed by the
``LocalIssuer`` keys, with the claims Supabase puts in them and this server's issuer.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from omnistack_core.testing.issuer import SUPABASE_JWKS_PATH, LocalIssuer

TOKEN_LIFETIME_SECONDS = 6 * 3600
"""Longer than a full run, so no token expires in the middle of a round."""


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / "jwks-cert.pem", directory / "jwks-key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_file, key_file


class HttpsIssuer:
    """``LocalIssuer``'s ES256 key published at ``url`` over HTTPS; ``certificate`` to trust."""

    def __init__(self, directory: Path) -> None:
        # ES256: the algorithm of Supabase's asymmetric signing keys, and the one profiled.
        self._issuer = LocalIssuer(algorithms=("ES256",))
        self.certificate, key_file = _self_signed(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, key_file)
        body = json.dumps({"keys": [key.jwk() for key in self._issuer.keys]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != SUPABASE_JWKS_PATH:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    @property
    def url(self) -> str:
        """The Supabase project URL to give the service."""
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._issuer.start()  # LocalIssuer's claims name its own URL, so it must be running
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._issuer.stop()
        self._server.shutdown()
        self._server.server_close()

    def token(self, sub: str) -> str:
        """A Supabase access token for ``sub``, issued by this project."""
        claims = self._issuer.supabase_claims(sub, iss=f"{self.url}/auth/v1")
        claims["exp"] = claims["iat"] + TOKEN_LIFETIME_SECONDS
        return self._issuer.sign(claims)


def user_ids(service: str, count: int) -> list[str]:
    """``count`` distinct Supabase user ids (UUIDs), stable for ``service``."""
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{service}/{n}")) for n in range(count)]
