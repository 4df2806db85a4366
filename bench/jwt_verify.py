"""Micro-benchmark: µs per access-token verify, gatepass against joserfc.

    python bench/jwt_verify.py [--rounds 7] [--scale 1.0]

For HS256, RS256, ES256 and EdDSA it times, on the same token:

- ``floor``: the signature check alone on prepared ``cryptography``/``hmac``
  objects — what no JWT library can beat;
- ``gp decode``: ``gatepass.tokens.jws.decode`` (signature + JSON, header
  cache as in production, no verified-token cache);
- ``gp cold``: ``AccessTokenCodec.verify`` with the token cache off:
  signature and every claim check, the comparison with joserfc;
- ``gp warm``: ``AccessTokenCodec.verify`` on a repeat token (cache hit);
- ``joserfc``: ``jwt.decode`` with a prepared key and a one-algorithm allow
  list, then ``JWTClaimsRegistry.validate`` for iss/aud/exp.

Medians over rounds, implementations interleaved so drift hits all alike.
Prints a table and the ratio gatepass cold / joserfc (target <= 1.3).
"""

from __future__ import annotations

import argparse
import hmac
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import import_key

from gatepass.tokens import jws
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.keys import ALGORITHMS, KeyRing, SigningKey, generate_key

ISS, AUD = "https://auth.example", "https://api.example"
# Loop sizes chosen so one round of one implementation takes ~0.1-0.2 s.
LOOPS = {"HS256": 20_000, "RS256": 4_000, "ES256": 1_500, "EdDSA": 1_200}


def floor_check(key: SigningKey, token: str) -> Callable[[], object]:
    """The bare crypto call on prepared objects, nothing else."""
    head, body, sig_seg = token.split(".")
    data = f"{head}.{body}".encode()
    sig = jws._b64decode(sig_seg, "signature")
    pub = key._public
    if key.alg == "HS256":
        secret = key.private_key
        assert isinstance(secret, bytes)
        return lambda: hmac.compare_digest(hmac.digest(secret, data, "sha256"), sig)
    if key.alg == "RS256":
        pad, sha = padding.PKCS1v15(), hashes.SHA256()
        return lambda: pub.verify(sig, data, pad, sha)
    if key.alg == "ES256":
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda: pub.verify(der, data, ecdsa)
    return lambda: pub.verify(sig, data)


def joserfc_check(key: SigningKey, token: str) -> Callable[[], object]:
    jkey: Any = (
        import_key(key.private_key, "oct")
        if key.alg == "HS256"
        else import_key(key.public_jwk() or {})
    )
    claims_registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        exp={"essential": True},
    )
    algorithms = [key.alg]

    def check() -> None:
        claims_registry.validate(jwt.decode(token, jkey, algorithms=algorithms).claims)

    return check


def per_call_us(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops * 1e6


def bench_alg(alg: str, rounds: int, scale: float) -> dict[str, float]:
    key = generate_key(alg, now=time.time())  # type: ignore[arg-type]
    ring = KeyRing([key], key.kid)
    cold = AccessTokenCodec(ring, issuer=ISS, audience=AUD, cache_size=0)
    warm = AccessTokenCodec(ring, issuer=ISS, audience=AUD)
    token, _ = warm.issue("user-42", roles=("admin",), scopes=("read", "write"), fid="f" * 22)
    now = time.time()
    cases: dict[str, Callable[[], object]] = {
        "floor": floor_check(key, token),
        "gp decode": lambda: jws.decode(token, ring, now=now),
        "gp cold": lambda: cold.verify(token),
        "gp warm": lambda: warm.verify(token),
        "joserfc": joserfc_check(key, token),
    }
    for fn in cases.values():  # warm-up, and proof each one accepts the token
        fn()
    loops = max(50, int(LOOPS[alg] * scale))
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(per_call_us(fn, loops))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply loop counts")
    args = parser.parse_args()
    # joserfc warns that "EdDSA" is deprecated by RFC 9864 on every decode.
    warnings.simplefilter("ignore")
    order = [a for a in ("HS256", "RS256", "ES256", "EdDSA") if a in ALGORITHMS]
    results = {alg: bench_alg(alg, args.rounds, args.scale) for alg in order}
    names = list(next(iter(results.values())))
    print(f"µs per verify, median of {args.rounds} rounds (Python {sys.version.split()[0]})")
    print(f"{'':<26}" + "".join(f"{alg:>10}" for alg in order))
    for name in names:
        print(f"{name:<26}" + "".join(f"{results[a][name]:>10.1f}" for a in order))
    for label, ours in (("gp cold / joserfc", "gp cold"), ("gp warm / joserfc", "gp warm")):
        ratios = "".join(f"{results[a][ours] / results[a]['joserfc']:>10.2f}" for a in order)
        print(f"{label:<26}" + ratios)
    print(
        f"{'gp cold - floor (µs)':<26}"
        + "".join(f"{results[a]['gp cold'] - results[a]['floor']:>10.1f}" for a in order)
    )


if __name__ == "__main__":
    main()
