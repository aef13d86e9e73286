"""The client address of a request from a trusted proxy's own header (``Fly-Client-IP``).

uvicorn's proxy support reads ``X-Forwarded-For`` and takes its rightmost address that is not
a trusted proxy. Where the platform appends an address of its own after the client's (Fly.io
appends the app's public IP), that rule finds the platform's address for every request, so
those platforms name the client in a header of their own, which their proxy always sets,
overwriting whatever the caller sent. ``omnistack serve`` reads that header instead, and
only from the peers ``FORWARDED_ALLOW_IPS`` names.
"""

from __future__ import annotations

import ipaddress
from contextlib import suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedPeers:
    """The peers whose forwarding headers are believed: networks, or ``*`` for any."""

    def __init__(self, peers: list[str]) -> None:
        self.any = "*" in peers
        self.networks: list[Network] = [
            ipaddress.ip_network(peer, strict=False) for peer in peers if peer != "*"
        ]

    def __contains__(self, host: object) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(str(host))
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def client_from_header(app: ASGIApp, trusted: TrustedPeers, header: str) -> ASGIApp:
    """``app``, its client address taken from ``header`` when the peer is a trusted proxy.

    ``X-Forwarded-Proto`` from the same peers sets the scheme, as uvicorn's proxy support does.
    A missing or malformed header leaves the peer's own address.
    """
    name = header.lower().encode("latin-1")

    async def with_client(scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer is not None and peer[0] in trusted:
            scope = dict(scope)
            for key, value in scope["headers"]:
                if key == name:
                    with suppress(UnicodeDecodeError, ValueError):
                        scope["client"] = (str(ipaddress.ip_address(value.decode().strip())), 0)
                elif key == b"x-forwarded-proto" and value in (b"http", b"https"):
                    scope["scheme"] = value.decode()
        await app(scope, receive, send)

    return with_client
