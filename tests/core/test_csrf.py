"""The pure CSRF core: token format and refusals, origins (SECURITY.md 23–26).

The middleware tests (tests/asgi/test_csrf.py) attack through HTTP; these pin
each check of :mod:`gatepass.csrf` on its own, so that weakening any one of
them (found by the mutation run, tests/mutation) fails a test here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from gatepass.csrf import ANONYMOUS_BINDING, TOKEN_LENGTH, CSRFSigner, normalize_origins, origin_of
from gatepass.errors import ConfigurationError

SECRET = b"s" * 32
OLD = b"o" * 32
BINDING = "session-hash-1"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def signer() -> CSRFSigner:
    # Built per test, never at import: the mutation run only swaps in mutated
    # code while a test runs, so an import-time signer would hide __init__.
    return CSRFSigner([SECRET])


def _decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=")


def test_token_format_is_the_documented_one() -> None:
    # base64url(nonce ‖ HMAC-SHA256(secret, "gatepass-csrf\0" ‖ binding ‖ "\0" ‖ nonce)[:16])
    token = signer().token_for(BINDING)
    assert len(token) == TOKEN_LENGTH == 43
    assert set(token) <= set(ALPHABET)
    raw = _decode(token)
    nonce, mac = raw[:16], raw[16:]
    expected = hmac.new(
        SECRET, b"gatepass-csrf\x00" + BINDING.encode() + b"\x00" + nonce, hashlib.sha256
    ).digest()[:16]
    assert mac == expected
    assert signer().verify(token, BINDING) is True


def test_every_token_has_a_fresh_nonce() -> None:
    tokens = {signer().token_for(BINDING) for _ in range(50)}
    assert len(tokens) == 50
    assert len({_decode(t)[:16] for t in tokens}) == 50


def test_token_is_bound_to_its_binding() -> None:
    token = signer().token_for(BINDING)
    assert signer().verify(token, "session-hash-2") is False
    assert signer().verify(token, ANONYMOUS_BINDING) is False
    assert signer().verify(signer().token_for(ANONYMOUS_BINDING), BINDING) is False
    # The separator keeps ("ab", nonce) and ("a", "b" ‖ nonce) apart.
    assert signer().verify(token, BINDING + "\x00") is False


def _flip_last(token: str) -> str:
    # Same 32 bytes, other spelling: set a filler bit of the last character.
    return token[:-1] + ALPHABET[ALPHABET.index(token[-1]) | 1]


def _malformed(token: str) -> list[str | None]:
    return [
        None, "", "!" * 43, "A" * 43, "=" * 43, token + "=", token + "==", token + "!",
        token + "A", token[:-1], token[1:], " " + token, token + "\n",
        token[:20] + "!" + token[21:], token[:20] + "." + token[21:],
        token[:-1] + "é", token[:-1] + "\u0663", _flip_last(token), token + token,
    ]  # fmt: skip


def test_malformed_tokens_are_refused() -> None:
    token = signer().token_for(BINDING)
    for bad in _malformed(token):
        assert signer().verify(bad, BINDING) is False, repr(bad)


def test_standard_base64_alphabet_is_not_accepted() -> None:
    # urlsafe_b64decode maps "-_" to "+/" and also reads "+/" as is: without
    # the alphabet check one token would have two spellings.
    for _ in range(200):
        token = signer().token_for(BINDING)
        if "-" in token or "_" in token:
            break
    else:
        pytest.fail("no token with - or _ in 200 draws")
    swapped = token.replace("-", "+").replace("_", "/")
    assert signer().verify(swapped, BINDING) is False


def test_non_canonical_last_character_is_refused() -> None:
    token = signer().token_for(BINDING)
    assert token[-1] in "AEIMQUYcgkosw048"  # our encoder never sets filler bits
    assert _decode(_flip_last(token)) == _decode(token)
    assert signer().verify(_flip_last(token), BINDING) is False


def test_non_string_tokens_are_refused() -> None:
    token = signer().token_for(BINDING)
    for bad in (token.encode(), [token], 43, object()):
        assert signer().verify(bad, BINDING) is False  # type: ignore[arg-type]


def test_token_under_another_secret_is_refused() -> None:
    assert signer().verify(CSRFSigner([OLD]).token_for(BINDING), BINDING) is False
    # A forged mac of the right shape, built without the secret:
    raw = _decode(signer().token_for(BINDING))
    forged = base64.urlsafe_b64encode(raw[:16] + bytes(16)).rstrip(b"=").decode()
    assert signer().verify(forged, BINDING) is False


def test_rotation_first_secret_signs_all_verify() -> None:
    rotated = CSRFSigner([SECRET, OLD])
    old_token = CSRFSigner([OLD]).token_for(BINDING)
    assert rotated.verify(old_token, BINDING) is True  # forms opened before the rotation
    new_token = rotated.token_for(BINDING)
    assert signer().verify(new_token, BINDING) is True  # signed with the first secret...
    assert CSRFSigner([OLD]).verify(new_token, BINDING) is False  # ...not the retired one


@pytest.mark.parametrize(
    "secrets",
    [[], (), [b""], [b"x" * 31], [SECRET, b"x" * 31], [b"x" * 31, SECRET], ["s" * 32], [None]],
)
def test_weak_or_missing_secrets_are_refused(secrets: list[bytes]) -> None:
    with pytest.raises(ConfigurationError) as info:
        CSRFSigner(secrets)
    assert str(info.value) == "CSRF secrets must be at least 32 bytes each."


def test_a_32_byte_secret_is_enough() -> None:
    assert CSRFSigner([b"x" * 32, b"y" * 64]).verify(
        CSRFSigner([b"x" * 32]).token_for(BINDING), BINDING
    )


# ------------------------------------------------------------------ origins

ORIGINS = [
    ("https://app.example", "https://app.example"),
    ("https://app.example/", "https://app.example"),
    ("https://app.example/some/page?q=1#f", "https://app.example"),
    ("HTTPS://App.Example", "https://app.example"),
    ("https://app.example:443/x", "https://app.example"),
    ("http://app.example:80/x", "http://app.example"),
    ("http://app.example:443/x", "http://app.example:443"),
    ("https://app.example:80/x", "https://app.example:80"),
    ("https://app.example:8443/page", "https://app.example:8443"),
    ("https://app.example:08443/page", "https://app.example:8443"),
    ("https://[::1]/", "https://[::1]"),
    ("https://[::1]:8443/x", "https://[::1]:8443"),
    ("https://[2001:DB8::1]:443", "https://[2001:db8::1]"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    # The origin of a URL with userinfo is its host, never the userinfo.
    ("https://app.example@evil.example/", "https://evil.example"),
    ("https://app.example:443@evil.example:8443/", "https://evil.example:8443"),
]


@pytest.mark.parametrize(("url", "origin"), ORIGINS)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        "", "null", "app.example", "/path", "//app.example", "ftp://app.example",
        "javascript:alert(1)", "data:text/html,x", "https://", "https:///path",
        "https://app.example:99999/", "https://app.example:-1/", "https://app.example:x/",
        "https://[::1/", "file:///etc/passwd", "wss://app.example",
    ],
)  # fmt: skip
def test_origin_of_refuses_what_has_no_http_origin(url: str) -> None:
    assert origin_of(url) is None


def test_normalize_origins_accepts_exact_origins() -> None:
    assert normalize_origins(
        ["https://app.example", "HTTPS://APP.example:443/", "https://app.example:8443",
         "http://[::1]:8000", "https://[2001:db8::1]"]
    ) == {"https://app.example", "https://app.example:8443", "http://[::1]:8000",
          "https://[2001:db8::1]"}  # fmt: skip
    assert normalize_origins([]) == frozenset()


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example/path", "https://app.example/?q=1", "https://app.example?q=1",
        "https://app.example#frag", "https://*.example",
        "https://app.*", "*", "https://app.example@evil.example",
        "https://user:pass@app.example", "https://@app.example", "app.example",
        "ftp://app.example", "null", "", "https://", "https://app.example:99999",
        "https://[::1", "//app.example",
    ],
)  # fmt: skip
def test_normalize_origins_refuses_non_origins(origin: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        normalize_origins(["https://fine.example", origin])
    assert "is not an origin" in str(info.value)


def test_bad_origins_are_named_only_when_that_is_safe() -> None:
    """The configuration error names a bad origin so an operator can find it,
    but never one with userinfo (it may hold a password) or an overlong value."""
    import pytest as _pytest

    from gatepass.csrf import normalize_origins
    from gatepass.errors import ConfigurationError

    def message(origin: str) -> str:
        with _pytest.raises(ConfigurationError) as info:
            normalize_origins([origin])
        return info.value.detail

    assert message("*") == "'*' is not an origin (scheme://host[:port], no path, no wildcard)."
    for secret in ("https://u:hunter2@app.example", "https://hunter2@app.example"):
        assert message(secret) == (
            "A value is not an origin (scheme://host[:port], no path, no wildcard)."
        )
    at_limit = "https://app.example/" + "p" * (200 - len("https://app.example/"))
    rule = "is not an origin (scheme://host[:port], no path, no wildcard)."
    assert message(at_limit) == f"{at_limit!r} {rule}"
    assert message(at_limit + "p").startswith("A value is not an origin")
