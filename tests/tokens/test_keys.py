"""Keys, the key ring, rotation and the key file."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from gatepass.errors import ConfigurationError, InvalidToken
from gatepass.tokens import jws
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.keyfile import KeyFile
from gatepass.tokens.keys import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    Algorithm,
    KeyRing,
    SigningKey,
    b64url,
    generate_key,
)

T0 = 1_700_000_000.0
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
REQUIRED_JWK = {
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA", "e": "AQAB"},
}


def key_material(key: SigningKey) -> list[str]:
    """Every spelling of the private material a leak could take."""
    if isinstance(key.private_key, bytes):
        return [key.private_key.hex(), b64url(key.private_key), repr(key.private_key)]
    der = key.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    body = pem.decode().splitlines()[1]
    return [der.hex()[-64:], body]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_generate_signs_and_verifies_for_every_alg(alg: Algorithm) -> None:
    key = generate_key(alg, now=T0)
    assert key.alg == alg and key.created_at == T0
    assert key.retired_at is None and key.verify_until is None
    assert len(key.kid) >= 16  # 96 random bits, url-safe
    assert generate_key(alg, now=T0).kid != key.kid
    sig = key.sign(b"message")
    assert key.verify(b"message", sig)
    assert not key.verify(b"messagf", sig)
    assert not key.verify(b"message", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not key.verify(b"message", b"")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_repr_never_shows_key_material(alg: Algorithm) -> None:
    key = generate_key(alg, now=T0)
    text = repr(key) + str(key) + repr(KeyRing([key], key.kid))
    assert key.kid in text
    for secret in key_material(key):
        assert secret not in text


@pytest.mark.parametrize(
    ("alg", "private"),
    [
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # noqa: S505 (the point)
        ("ES256", ec.generate_private_key(ec.SECP384R1())),
        ("EdDSA", ec.generate_private_key(ec.SECP256R1())),
        ("RS256", Ed25519PrivateKey.generate()),
        ("HS256", b"x" * 31),
        ("HS256", "a string is not a secret" * 3),
        ("none", b"x" * 32),
    ],
)
def test_key_must_suit_its_algorithm(alg: Any, private: Any) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey("kid", alg, private, created_at=T0)


@pytest.mark.parametrize("kid", ["", "../x", "a b", "k" * 129, "ключ"])
def test_configured_kids_are_url_safe(kid: str) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey(kid, "HS256", b"x" * 32, created_at=T0)


def test_jwks_publishes_public_parts_only_and_never_hs256() -> None:
    keys = [generate_key(alg, now=T0) for alg in ALGORITHMS]
    hs = next(k for k in keys if k.alg == "HS256")
    ring = KeyRing(keys, keys[0].kid)
    published = ring.jwks(T0)["keys"]
    assert len(published) == len(ALGORITHMS) - 1
    assert hs.public_jwk() is None
    assert all(jwk["kid"] != hs.kid for jwk in published)
    text = json.dumps(ring.jwks(T0))
    for key in keys:
        for secret in key_material(key):
            assert secret not in text
    for jwk in published:
        assert not PRIVATE_MEMBERS & set(jwk)
        assert jwk["use"] == "sig"
        key = next(k for k in keys if k.kid == jwk["kid"])
        assert jwk["alg"] == key.alg
        assert REQUIRED_JWK[key.alg].items() <= jwk.items()
        if key.alg == "ES256":  # fixed-length coordinates, RFC 7518 §6.2.1.2
            assert len(jwk["x"]) == len(jwk["y"]) == 43


def test_jwks_imports_into_joserfc_and_verifies_our_tokens() -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = [generate_key(alg, now=T0) for alg in ("EdDSA", "ES256", "RS256")]
    jwks = KeySet.import_key_set(KeyRing(keys, keys[0].kid).jwks(T0))  # type: ignore[arg-type]
    for key in keys:
        token = jws.encode({"sub": "u"}, key, typ="JWT")
        assert jwt.decode(token, jwks, algorithms=[key.alg]).claims == {"sub": "u"}


def test_rotation_new_tokens_use_new_key_old_verify_until_deadline() -> None:
    now = [T0]
    holder = {"ring": KeyRing.generate("EdDSA", now=T0)}
    codec = AccessTokenCodec(
        lambda: holder["ring"], issuer="iss", audience="aud", ttl=300, leeway=5,
        clock=lambda: now[0],
    )  # fmt: skip
    old_kid = holder["ring"].active.kid
    old_token, _ = codec.issue("alice")
    codec.verify(old_token)  # now cached under the old ring

    now[0] = T0 + 100
    holder["ring"] = holder["ring"].rotate("ES256", now=now[0], retire_after=305)
    ring = holder["ring"]
    new_token, _ = codec.issue("alice")
    assert jws.decode(new_token, ring, now=now[0])[0]["kid"] == ring.active.kid != old_kid
    assert ring.active.alg == "ES256"
    retired = ring.get(old_kid, now=now[0])
    assert retired is not None and retired.retired_at == T0 + 100
    assert retired.verify_until == T0 + 405
    assert codec.verify(old_token).sub == "alice"  # retired keys still verify
    assert old_kid in {k["kid"] for k in ring.jwks(now[0])["keys"]}

    # At the deadline the key is gone even for a token that has not expired.
    assert jws.decode(old_token, ring, now=T0 + 404.9)
    with pytest.raises(InvalidToken) as err:
        jws.decode(old_token, ring, now=T0 + 405)
    assert err.value.reason == "unknown_kid"
    assert old_kid not in {k["kid"] for k in ring.jwks(T0 + 405)["keys"]}
    assert [k.kid for k in ring.prune(T0 + 405)] == [ring.active.kid]
    assert len(ring.prune(T0 + 404)) == 2


def test_cached_token_fails_once_its_key_leaves_the_ring() -> None:
    now = [T0]
    holder = {"ring": KeyRing.generate("HS256", now=T0)}
    codec = AccessTokenCodec(lambda: holder["ring"], issuer="i", audience="a", clock=lambda: now[0])
    token, _ = codec.issue("bob")
    codec.verify(token)
    # Emergency rotation with no grace: a new ring, the old key dropped.
    holder["ring"] = holder["ring"].rotate("HS256", now=T0, retire_after=0).prune(T0)
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_ring_validation() -> None:
    a, b = generate_key("HS256", now=T0), generate_key("HS256", now=T0)
    with pytest.raises(ConfigurationError):
        KeyRing([a, a], a.kid)
    with pytest.raises(ConfigurationError):
        KeyRing([a], b.kid)
    ring = KeyRing([a, b], a.kid).rotate("HS256", now=T0, retire_after=10)
    with pytest.raises(ConfigurationError):  # a retired key cannot become active
        KeyRing(ring, a.kid)
    with pytest.raises(ConfigurationError):
        ring.rotate("HS256", now=T0, retire_after=-1)
    assert ring.get("nope", now=T0) is None


# --- the key file -----------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keyfile_round_trip_every_alg(tmp_path: Path) -> None:
    ring = KeyRing.generate("EdDSA", now=T0)
    for i, alg in enumerate(("ES256", "RS256", "HS256")):
        ring = ring.rotate(alg, now=T0 + i + 1, retire_after=300)
    store = KeyFile(tmp_path / "keys")
    assert store.load() is None
    store.save(ring)
    assert mode(tmp_path / "keys") == 0o700
    assert mode(store.path) == 0o600
    assert sorted(os.listdir(tmp_path / "keys")) == ["keys.json"]  # no temp file left
    loaded = store.load()
    assert loaded is not None and loaded.active.kid == ring.active.kid
    assert loaded.jwks(T0) == ring.jwks(T0)
    for key in ring:
        twin = loaded.get(key.kid, now=T0)
        assert twin is not None
        assert (twin.alg, twin.created_at, twin.retired_at, twin.verify_until) == (
            key.alg, key.created_at, key.retired_at, key.verify_until,
        )  # fmt: skip
        token = jws.encode({"n": 1}, key, typ="JWT")  # the private half survived too
        assert jws.decode(token, loaded, now=T0)[1] == {"n": 1}
        assert jws.decode(jws.encode({"n": 2}, twin, typ="JWT"), ring, now=T0)[1] == {"n": 2}


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660])
def test_keyfile_refuses_a_file_others_can_read(tmp_path: Path, bad_mode: int) -> None:
    store = KeyFile(tmp_path)
    store.save(KeyRing.generate("HS256", now=T0))
    os.chmod(store.path, bad_mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        store.load()
    with pytest.raises(ConfigurationError):
        store.load_or_create("HS256", T0)  # never silently replaced either


def test_keyfile_refuses_symlink_and_garbage(tmp_path: Path) -> None:
    store = KeyFile(tmp_path)
    target = tmp_path / "elsewhere.json"
    KeyFile(tmp_path / "other").save(KeyRing.generate("HS256", now=T0))
    target.write_bytes((tmp_path / "other" / "keys.json").read_bytes())
    os.chmod(target, 0o600)
    store.path.symlink_to(target)
    with pytest.raises(ConfigurationError):
        store.load()
    store.path.unlink()
    for garbage in (b"", b"[]", b'{"keys": [], "active": "x"}', b'{"keys": [{"alg": "RS256"}]}'):
        fd = os.open(store.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, garbage)
        os.close(fd)
        with pytest.raises(ConfigurationError):
            store.load()


def _start_at_once(directory: str, barrier: Any, queue: Any) -> None:
    barrier.wait()
    ring = KeyFile(directory).load_or_create("RS256", T0)  # slow keygen widens the race
    queue.put((ring.active.kid, json.dumps(ring.jwks(T0), sort_keys=True)))


def test_concurrent_load_or_create_yields_one_ring(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(3):
        directory = str(tmp_path / f"run{attempt}")
        barrier, queue = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_start_at_once, args=(directory, barrier, queue)) for _ in "ab"]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0
        assert results[0] == results[1]
        stored = KeyFile(directory).load()
        assert stored is not None and stored.active.kid == results[0][0]


def test_load_or_create_defaults_and_reuses(tmp_path: Path) -> None:
    store = KeyFile(tmp_path / "k")
    ring = store.load_or_create()
    assert ring.active.alg == DEFAULT_ALGORITHM
    assert store.load_or_create().active.kid == ring.active.kid
