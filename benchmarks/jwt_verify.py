"""Token verifications per second: OmniStack's verifier (warm JWKS cache) against bare PyJWT.

The same Supabase-shaped token is verified by

  * bare PyJWT: ``jwt.decode`` with the public key already in hand, the algorithm, issuer and
    audience given (the floor: signature and claims, nothing else);
  * OmniStack: ``SupabaseVerifier.verify`` with the key in its JWKS cache (fetched once from a
    local issuer before timing): size check, header, allow-listed algorithm, key lookup,
    required claims, and the principal built from the claims.

RS256 and ES256, in interleaved rounds; the median of each is printed with the overhead.

    uv run python benchmarks/jwt_verify.py [--verifications 3000 --rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
import jwt

from omnistack_core.auth import JwksCache, SupabaseVerifier
from omnistack_core.auth.supabase import supabase_issuer, supabase_jwks_url
from omnistack_core.testing.issuer import LocalIssuer


async def measure(algorithm: str, verifications: int, rounds: int) -> tuple[float, float]:
    """Median verifications per second of (bare PyJWT, OmniStack) for ``algorithm``."""
    with LocalIssuer(algorithms=(algorithm,)) as issuer:
        async with httpx.AsyncClient(timeout=5) as client:
            verifier = SupabaseVerifier(
                issuer.url, JwksCache(supabase_jwks_url(issuer.url), client)
            )
            token = issuer.supabase_token("bench-user")
            public_key = issuer.keys[0].private_key.public_key()
            issuer_name = supabase_issuer(issuer.url)
            await verifier.verify(token)  # warm the cache: the one JWKS fetch
            bare_rates, ours_rates = [], []
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(verifications):
                    jwt.decode(
                        token,
                        public_key,
                        algorithms=[algorithm],
                        audience="authenticated",
                        issuer=issuer_name,
                    )
                bare_rates.append(verifications / (time.perf_counter() - started))
                started = time.perf_counter()
                for _ in range(verifications):
                    await verifier.verify(token)
                ours_rates.append(verifications / (time.perf_counter() - started))
            if issuer.jwks_requests != 1:
                raise SystemExit("the JWKS was fetched again while timing: the cache went cold")
    return statistics.median(bare_rates), statistics.median(ours_rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verifications", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    print(f"median of {arguments.rounds} rounds x {arguments.verifications} verifications")
    for algorithm in ("RS256", "ES256"):
        bare, ours = asyncio.run(measure(algorithm, arguments.verifications, arguments.rounds))
        overhead = (bare / ours - 1) * 100
        print(
            f"  {algorithm}: bare PyJWT {bare:8.0f}/s   OmniStack {ours:8.0f}/s   "
            f"ratio {ours / bare:.2f}   overhead {overhead:+.1f}% (aim: <= 10%)"
        )


if __name__ == "__main__":
    main()
