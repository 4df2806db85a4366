"""SECURITY.md token cases 1-9, each as a real attack on AccessTokenCodec.verify.

Every forged token is built by hand (``forge``) from raw header and payload
text; each test also proves that the same forging path yields an ACCEPTED
token when nothing is wrong, so a rejection is the check's doing, not a
broken forgery.
"""

from __future__ import annotations

import base64
import hmac
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.errors import InvalidToken
from gatepass.tokens import jws
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.keys import ALGORITHMS, Algorithm, KeyRing, SigningKey, b64url, generate_key

NOW = 1_700_000_000.0
ISS, AUD = "https://auth.example", "https://api.example"
RINGS = {alg: KeyRing.generate(alg, now=NOW - 10) for alg in ALGORITHMS}
ASYMMETRIC = ("EdDSA", "ES256", "RS256")
SPKI = PublicFormat.SubjectPublicKeyInfo


def codec(alg: Algorithm = "EdDSA", **kw: Any) -> AccessTokenCodec:
    return AccessTokenCodec(RINGS[alg], issuer=ISS, audience=AUD, clock=lambda: NOW, **kw)


def good_claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISS, "aud": AUD, "sub": "alice", "iat": NOW - 1, "nbf": NOW - 1,
        "exp": NOW + 299, "jti": "j" * 22, "roles": ["admin"], "scope": "read write", "gen": 0,
    }  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not DROP}


DROP = object()


def seg(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64url(raw)


def forge(
    header: Any = None,
    claims: Any = None,
    *,
    key: SigningKey | None = None,
    sign: Callable[[bytes], bytes] | None = None,
) -> str:
    """A token from raw parts; signed by ``sign`` or ``key`` (default the EdDSA ring key)."""
    key = key or RINGS["EdDSA"].active
    if header is None:
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    signing_input = f"{seg(header)}.{seg(good_claims() if claims is None else claims)}"
    signature = (sign or key.sign)(signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def rejects(token: Any, alg: Algorithm = "EdDSA", **kw: Any) -> str:
    with pytest.raises(InvalidToken) as err:
        codec(alg, **kw).verify(token)
    assert err.value.reason  # always names the check
    if isinstance(token, str) and len(token) > 20:
        assert token[-20:] not in str(err.value) + err.value.reason  # no token material
    return err.value.reason


def test_control_forged_token_is_accepted() -> None:
    for alg in ALGORITHMS:
        key = RINGS[alg].active
        assert codec(alg).verify(forge(key=key)).sub == "alice"


# 1. alg none in every spelling, empty, missing --------------------------------

NONE_ALGS = ["none", "None", "NONE", "nOnE", "", " none", "none ", None, 0, ["EdDSA"], {}]


@pytest.mark.parametrize("alg", NONE_ALGS)
@pytest.mark.parametrize("signature", ["", "AA", "sig"])
def test_alg_none_and_friends(alg: Any, signature: str) -> None:
    kid = RINGS["EdDSA"].active.kid
    header = {"kid": kid, "typ": "at+jwt"} if alg is None else {"alg": alg, "kid": kid}
    token = f"{seg(header)}.{seg(good_claims())}.{signature}"
    assert rejects(token) in {"format", "alg_missing", "alg_mismatch", "signature_base64"}
    # and a "none" token that carries the real signature is still refused
    real = forge().split(".")[2]
    assert rejects(f"{seg(header)}.{seg(good_claims())}.{real}") in {"alg_missing", "alg_mismatch"}


# 2. algorithm confusion: the public key as an HMAC secret ---------------------


def public_key_forms(key: SigningKey) -> list[bytes]:
    pub = key._public
    forms = [
        pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        pub.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH),
        json.dumps(key.public_jwk()).encode(),
        json.dumps(key.public_jwk(), separators=(",", ":"), sort_keys=True).encode(),
        json.dumps({"keys": [key.public_jwk()]}).encode(),
    ]
    if key.alg == "RS256":
        forms.append(pub.public_bytes(Encoding.PEM, PublicFormat.PKCS1))
        forms.append(pub.public_bytes(Encoding.DER, PublicFormat.PKCS1))
    elif key.alg == "EdDSA":
        forms.append(pub.public_bytes(Encoding.Raw, PublicFormat.Raw))
    else:
        forms.append(pub.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    return forms


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_public_key_as_hs256_secret(alg: Algorithm) -> None:
    victim = RINGS[alg].active
    for secret in public_key_forms(victim):
        for text in (secret, secret.strip(), secret + b"\n"):
            for hs_name in ("HS256", "HS384", "HS512", "hs256"):
                digest = {"HS384": "sha384", "HS512": "sha512"}.get(hs_name, "sha256")
                header = {"alg": hs_name, "kid": victim.kid, "typ": "at+jwt"}
                token = forge(header, sign=lambda data, s=text, d=digest: hmac.digest(s, data, d))
                assert rejects(token, alg) == "alg_mismatch"


def test_hs256_ring_key_never_verifies_an_asymmetric_header() -> None:
    hs = RINGS["HS256"].active
    for alg in ASYMMETRIC:
        token = forge({"alg": alg, "kid": hs.kid, "typ": "at+jwt"}, sign=hs.sign)
        assert rejects(token, "HS256") == "alg_mismatch"


# 3. hostile kids ---------------------------------------------------------------

_AUDIT: list[tuple[str, tuple[Any, ...]]] = []
_AUDITING = [False]
_WATCHED = ("open", "os.", "subprocess", "socket", "shutil", "sqlite3", "glob", "pathlib")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITING[0] and event.startswith(_WATCHED):
        _AUDIT.append((event, args))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it is inert unless _AUDITING


@contextmanager
def no_io() -> Iterator[None]:
    _AUDIT.clear()
    _AUDITING[0] = True
    try:
        yield
    finally:
        _AUDITING[0] = False
    assert _AUDIT == []


HOSTILE_KIDS: list[Any] = [
    "../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "' OR 1=1 --",
    "x'; DROP TABLE keys;--",
    "$(rm -rf /)", "`id`", "|cat /etc/passwd", "%2e%2e%2f", "\x00", "kid\n", "https://evil.example/k",
    "*", "k" * 300, 123, 0, True, None, {"a": 1}, ["kid"], "unknown-kid",
]  # fmt: skip


@pytest.mark.parametrize("kid", HOSTILE_KIDS)
def test_hostile_kid_is_a_dict_miss(kid: Any) -> None:
    header = {"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
    token = forge(header)  # validly signed by the real key, only the kid is hostile
    with no_io():
        assert rejects(token) in {"unknown_kid", "kid_invalid"}


def test_missing_kid_and_10kb_kid() -> None:
    assert rejects(forge({"alg": "EdDSA", "typ": "at+jwt"})) == "kid_invalid"
    for kid in ("", "k" * (jws.MAX_KID_LENGTH + 1)):
        assert rejects(forge({"alg": "EdDSA", "kid": kid})) == "kid_invalid"
    assert rejects(forge({"alg": "EdDSA", "kid": "k" * 10_240, "typ": "at+jwt"})) == "size"


def test_a_flood_of_distinct_tokens_cannot_grow_the_caches() -> None:
    c = codec("HS256", cache_size=50)
    key = RINGS["HS256"].active
    for i in range(600):
        with pytest.raises(InvalidToken):  # a distinct forged header each time
            c.verify(forge({"alg": "HS256", "kid": f"k{i}", "typ": "at+jwt"}, key=key))
        c.verify(forge(claims=good_claims(jti=f"j{i}"), key=key))  # distinct valid tokens
        assert len(jws._header_cache) <= jws._HEADER_CACHE_SIZE
        assert len(c._cache) <= 50


def test_kid_of_another_ring_is_unknown() -> None:
    stranger = generate_key("EdDSA", now=NOW)
    assert rejects(forge(key=stranger)) == "unknown_kid"


# 4. embedded keys are never used ----------------------------------------------


@pytest.mark.parametrize("attacker_alg", ASYMMETRIC)
@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_embedded_attacker_key_is_ignored(attacker_alg: Algorithm, member: str) -> None:
    attacker = generate_key(attacker_alg, now=NOW)
    jwk = attacker.public_jwk()
    assert jwk is not None
    embedded: Any = {
        "jwk": jwk,
        "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem",
        "x5c": [base64.b64encode(attacker._public.public_bytes(Encoding.DER, SPKI)).decode()],
    }[member]
    for kid in (RINGS[attacker_alg].active.kid, attacker.kid, jwk["kid"]):
        header = {"alg": attacker_alg, "kid": kid, "typ": "at+jwt", member: embedded}
        with no_io():  # no fetch of jku/x5u either
            assert rejects(forge(header, key=attacker), attacker_alg) in {
                "signature",
                "unknown_kid",
            }


def test_embedded_members_in_a_genuine_token_change_nothing() -> None:
    key = RINGS["ES256"].active
    header = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt", "jku": "https://evil.example/"}
    assert codec("ES256").verify(forge(header, key=key)).sub == "alice"


# 5. signatures: stripped, truncated, flipped, borrowed ------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signature_tampering(alg: Algorithm) -> None:
    key = RINGS[alg].active
    token = forge(key=key)
    head, body, sig = token.split(".")
    raw = jws._b64decode(sig, "s")
    assert rejects(f"{head}.{body}.", alg) == "format"
    assert rejects(f"{head}.{body}", alg) == "format"
    for cut in (1, 2, 4, len(sig) // 2, len(sig) - 1):
        assert rejects(token[:-cut], alg) in {"signature", "signature_base64", "format"}
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 1 << (i % 8)
        assert rejects(f"{head}.{body}.{b64url(bytes(flipped))}", alg) == "signature"
    longer = b64url(raw + bytes(1))
    assert rejects(f"{head}.{body}.{longer}", alg) == "signature"
    # borrowed: a real signature by the same key over other claims
    other = forge(claims=good_claims(sub="mallory"), key=key).split(".")[2]
    assert rejects(f"{head}.{body}.{other}", alg) == "signature"
    # borrowed: claims from one token, header of another
    eve_body = forge(claims=good_claims(sub="eve"), key=key).split(".")[1]
    assert rejects(f"{head}.{eve_body}.{sig}", alg) == "signature"
    # a same-kid key outside the ring (a stolen kid, not a stolen key)
    twin = generate_key(alg, now=NOW, kid=key.kid)
    assert rejects(forge(key=twin), alg) == "signature"


# 6. time and numeric claims --------------------------------------------------

BAD_NUMBERS: list[Any] = ["1700000300", True, False, None, 1e300, -1, 2**70, [NOW + 60], {}]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_time_claims(claim: str, value: Any) -> None:
    assert rejects(forge(claims=good_claims(**{claim: value}))) == claim


def test_time_windows_and_leeway() -> None:
    ok = codec().verify
    assert ok(forge(claims=good_claims(exp=NOW - 4.9))).sub == "alice"  # leeway 5
    assert rejects(forge(claims=good_claims(exp=NOW - 5))) == "expired"
    assert rejects(forge(claims=good_claims(exp=NOW - 86_400))) == "expired"
    assert ok(forge(claims=good_claims(nbf=NOW + 5))).sub == "alice"
    assert rejects(forge(claims=good_claims(nbf=NOW + 5.1))) == "not_yet_valid"
    assert ok(forge(claims=good_claims(nbf=DROP))).nbf is None
    assert rejects(forge(claims=good_claims(iat=NOW + 60))) == "iat_future"
    assert rejects(forge(claims=good_claims(exp=DROP))) == "exp"
    assert rejects(forge(claims=good_claims(iat=DROP))) == "iat"


def test_non_finite_numbers_never_parse() -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400"):
        body = json.dumps(good_claims()).replace(f"{NOW + 299}", literal)
        assert literal in body
        assert rejects(forge(claims=body.encode())) == "payload_json"


def test_cached_token_expires_on_the_clock() -> None:
    now = [NOW]
    c = AccessTokenCodec(RINGS["HS256"], issuer=ISS, audience=AUD, clock=lambda: now[0])
    token, claims = c.issue("alice")
    assert c.verify(token) is c.verify(token)  # second call served from the cache
    now[0] = claims.exp + 5
    with pytest.raises(InvalidToken) as err:
        c.verify(token)
    assert err.value.reason == "expired"
    now[0] = NOW - 10  # clock back before nbf - leeway: refused from the cache too
    with pytest.raises(InvalidToken):
        c.verify(token)


# 7. audience, issuer, token type ---------------------------------------------

BAD_AUD: list[Any] = [
    "https://api.example.evil", "https://api.exampl", "xhttps://api.example", "https://api.example/",
    " https://api.example", "HTTPS://API.EXAMPLE", "https://api.example\x00", "", None, 1, DROP,
    ["https://api.example.evil"], [["https://api.example"]], [], [AUD, 1], {"aud": AUD},
    [AUD[:-1], AUD + "x"], "https://api.example https://other",
]  # fmt: skip


@pytest.mark.parametrize("aud", BAD_AUD)
def test_wrong_audience(aud: Any) -> None:
    assert rejects(forge(claims=good_claims(aud=aud))) == "aud"


def test_audience_list_containing_ours_is_accepted() -> None:
    assert codec().verify(forge(claims=good_claims(aud=["other", AUD]))).aud == ("other", AUD)


@pytest.mark.parametrize(
    "iss",
    [
        "https://auth.example.evil",
        "https://auth.exampl",
        "https://auth.example/",
        [ISS],
        None,
        DROP,
    ],
)
def test_wrong_issuer(iss: Any) -> None:
    assert rejects(forge(claims=good_claims(iss=iss))) == "iss"


OTHER_TYPES = ["JWT", "id+jwt", "rt+jwt", "refresh+jwt", "AT+JWT", "application/at+jwt", "", None]


@pytest.mark.parametrize("typ", OTHER_TYPES)
def test_other_token_types_are_not_access_tokens(typ: Any) -> None:
    key = RINGS["EdDSA"].active
    header = {"alg": "EdDSA", "kid": key.kid} | ({} if typ is None else {"typ": typ})
    assert rejects(forge(header)) == "typ"
    id_token = jws.encode(good_claims(nonce="n", azp="client"), key, typ="JWT")
    assert rejects(id_token) == "typ"


@pytest.mark.parametrize(
    ("claim", "value"),
    [("sub", ""), ("sub", 5), ("sub", "s" * 257), ("jti", None), ("roles", "admin"), ("roles", [1]),
     ("scope", ["read"]), ("gen", "0"), ("gen", True), ("gen", -1), ("fid", 7), ("fid", "")],
)  # fmt: skip
def test_malformed_claim_types(claim: str, value: Any) -> None:
    assert rejects(forge(claims=good_claims(**{claim: value}))) == claim


# 8/9. malformed and oversize -----------------------------------------------------


def test_malformed_tokens() -> None:
    good = forge()
    head, body, sig = good.split(".")
    bad_utf8 = seg(b"\xff\xfe{}")
    dup_header = b64url(b'{"alg":"EdDSA","alg":"none","kid":"x"}')
    long_head = head + "A" * ((1 - len(head)) % 4)  # a length no base64 string has
    cases: dict[str, str] = {
        "": "format", "null": "format", "a": "format", "a.b": "format", "a.b.c.d": "format",
        f"{good}.{sig}": "format", f"{head}.{body}.{sig}=": "format",
        f"{head}=.{body}.{sig}": "format", f"{head}.{body}.{sig.replace('-', '+')}+": "format",
        f" {good}": "format", f"{good}\n": "format",
        f"{head}.{body}.{sig[:10]} {sig[10:]}": "format",
        f"{head}.{body}é.{sig}": "format", f"!!!.{body}.{sig}": "format",
        f"{bad_utf8}.{body}.{sig}": "header_json",
        f"{seg([1, 2])}.{body}.{sig}": "header_not_object",
        f"{seg('alg')}.{body}.{sig}": "header_not_object",
        f"{dup_header}.{body}.{sig}": "header_duplicate_key",
        f"{long_head}.{body}.{sig}": "header_base64",
        f"{seg({'alg': 'EdDSA', 'kid': 'x', 'crit': ['exp']})}.{body}.{sig}": "crit",
    }  # fmt: skip
    for token, reason in cases.items():
        assert rejects(token) == reason, repr(token)
    for bad in (None, b"a.b.c", 42, ["a", "b", "c"]):
        assert rejects(bad) == "size"


def test_non_canonical_base64_is_refused() -> None:
    head, body, sig = forge().split(".")
    assert len(sig) % 4 == 2  # 64-byte Ed25519 signature: the last character has 4 filler bits
    alias = sig[:-1] + chr(ord(sig[-1]) + 1)  # same data bits, one filler bit set
    assert jws._b64decode(sig, "s") == base64.urlsafe_b64decode(alias + "==")  # a real alias
    assert rejects(f"{head}.{body}.{alias}") == "signature_base64"


def test_signed_but_structurally_hostile_payloads() -> None:
    dup = b'{"sub":"alice","sub":"admin"}'
    assert rejects(forge(claims=dup)) == "payload_duplicate_key"
    assert rejects(forge(claims=b"[" * 33 + b"]" * 33)) == "payload_not_object"
    deep = b'{"a":' * 33 + b"1" + b"}" * 33
    assert rejects(forge(claims=deep)) == "payload_depth"
    # Past the recursion limit the C scanner raises RecursionError: caught.
    assert rejects(forge(claims=b'{"a":' + b"[" * 2500 + b"]" * 2500 + b"}")) == "payload_json"
    assert rejects(forge(claims=b'{"a":' * 10_000 + b"1" + b"}" * 10_000)) == "size"
    assert rejects(forge(claims=b"\xff" + json.dumps(good_claims()).encode())) == "payload_json"
    assert rejects(forge(claims=b"null")) == "payload_not_object"
    shallow = good_claims(extra=json.loads('{"a":' * 31 + "1" + "}" * 31))
    assert codec().verify(forge(claims=shallow)).sub == "alice"  # depth 32 is allowed


def test_10k_deep_nesting_even_without_the_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jws, "MAX_TOKEN_LENGTH", 1 << 20)
    for deep in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        assert rejects(forge(claims=deep)) == "payload_json"


def test_oversize_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_: Any) -> Any:
        raise AssertionError("decoded an oversize token")

    monkeypatch.setattr(jws, "_b64decode", explode)
    for size in (jws.MAX_TOKEN_LENGTH + 1, 1 << 20):
        assert rejects("A" * size) == "size"
        assert rejects(forge()[:10] + "." * size) == "size"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")), st.builds(
    lambda a, b, c: f"{a}.{b}.{c}", st.text("AQgw-_=+/ .é" + "abcXYZ019", max_size=40),
    st.text(max_size=40), st.text(max_size=40),
)))  # fmt: skip
def test_garbage_only_ever_raises_invalid_token(token: str) -> None:
    for alg in ALGORITHMS:
        with pytest.raises(InvalidToken):
            codec(alg).verify(token)
