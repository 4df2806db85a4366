"""Property-based fuzzing of every parser that meets attacker input.

No input makes them raise anything but their documented errors:

* the cookie parser and ``read_cookie``: nothing at all, and only cookie-octets out;
* ``AccessTokenCodec.verify`` with a real key ring: only ``InvalidToken``;
* ``safe_next``: nothing; the default or a local path (one leading ``/``, no
  backslash or control character, however often it is percent-decoded);
* ``CSRFSigner.verify`` and ``origin_of``: nothing;
* ``RequestLimitsMiddleware``: no exception; a 4xx whenever a cap is passed,
  the app's own answer otherwise;
* ``normalize_email``: only ``InvalidRequest`` (and it is idempotent);
* refresh-token parsing: nothing (``successor``: only ``InvalidGrant``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import string
import unicodedata
from typing import Any
from urllib.parse import unquote

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gatepass.asgi.limits import RequestLimitsMiddleware
from gatepass.cookies import MAX_COOKIE_HEADER, parse_cookie_header, read_cookie
from gatepass.csrf import ANONYMOUS_BINDING, CSRFSigner, origin_of
from gatepass.errors import InvalidGrant, InvalidRequest, InvalidToken
from gatepass.redirects import safe_next
from gatepass.tokens import refresh
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.keys import ALGORITHMS, KeyRing
from gatepass.users.emails import normalize_email

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")

# -- cookies ------------------------------------------------------------------------

COOKIE_NAMES = ["__Host-gatepass", "__Host-gatepass-csrf", "sid", "theme"]
LOOKALIKES = [
    "__host-gatepass", "__HOST-GATEPASS", "__Host-gatepass\u200b", "＿＿Host-gatepass",
    " __Host-gatepass", "__Host-gatepass\t", "__Host-gatepass\x00", "__Host-gatepass\u00ad",
    "\ufeff__Host-gatepass", "__Ｈost-gatepass",
]  # fmt: skip
# (Cross-script confusables such as a Cyrillic "ѕ" are out of scope by design:
# the parser folds case, compatibility forms and invisible characters.)
_cookie_pieces = st.one_of(
    st.sampled_from(COOKIE_NAMES + LOOKALIKES),
    st.sampled_from(["=", ";", "; ", '"', " ", "\t", "==", ";;", "\r\n", ","]),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.~%+/=", max_size=50),
    st.text(max_size=20),
)
cookie_headers = st.one_of(
    st.text(max_size=300),
    st.lists(_cookie_pieces, max_size=30).map("".join),
    st.integers(MAX_COOKIE_HEADER - 2, MAX_COOKIE_HEADER + 2).map(lambda n: "a=" + "b" * (n - 2)),
)


@FUZZ
@given(cookie_headers, st.sampled_from(COOKIE_NAMES))
def test_cookie_parsers_never_raise_and_agree(header: str, name: str) -> None:
    parsed = parse_cookie_header(header)
    value = read_cookie(header, name)
    assert value == parsed.get(name)
    if value is not None:
        assert _COOKIE_VALUE.fullmatch(value)
        assert len(header) <= MAX_COOKIE_HEADER
    for found in parsed.values.values():
        assert _COOKIE_VALUE.fullmatch(found)


@FUZZ
@given(cookie_headers, st.sampled_from(LOOKALIKES))
def test_a_lookalike_beside_the_real_cookie_hides_it(header: str, lookalike: str) -> None:
    planted = f"{lookalike}=attacker; {header}; __Host-gatepass=real"
    assert read_cookie(planted, "__Host-gatepass") is None
    assert parse_cookie_header(planted).get("__Host-gatepass") is None


# -- access tokens --------------------------------------------------------------------

NOW = 1_700_000_000.0
RINGS = {alg: KeyRing.generate(alg, now=NOW - 10) for alg in ALGORITHMS}
CODECS = {
    alg: AccessTokenCodec(ring, issuer="https://a.test", audience="https://a.test",
                          clock=lambda: NOW, cache_size=0)
    for alg, ring in RINGS.items()
}  # fmt: skip
GOOD = {alg: c.issue("alice", roles=("admin",), fid="f" * 22)[0] for alg, c in CODECS.items()}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from([*ALGORITHMS, "none", "HS512", "", None]) | _json_values,
        "kid": st.sampled_from([r.active.kid for r in RINGS.values()]) | _json_values,
        "typ": st.sampled_from(["at+jwt", "JWT", "jwt"]) | _json_values,
        "crit": _json_values,
        "jwk": _json_values,
    },
)
_segment = st.one_of(
    _json_values.map(lambda v: _b64(json.dumps(v).encode())),
    st.binary(max_size=64).map(_b64),
    st.text(alphabet=string.ascii_letters + string.digits + "-_=+/.", max_size=60),
    st.text(max_size=20),
)


@st.composite
def token_texts(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 4))
    alg = draw(st.sampled_from(ALGORITHMS))
    good = GOOD[alg]
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:  # three (or some) segments of anything
        return ".".join(draw(st.lists(_segment, min_size=1, max_size=5)))
    if kind == 2:  # a forged header on a real payload and signature
        _, payload, sig = good.split(".")
        return f"{_b64(json.dumps(draw(_headers)).encode())}.{payload}.{sig}"
    if kind == 3:  # a real token with a few characters changed
        chars = list(good)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(chars) - 1))
            chars[i] = draw(st.sampled_from(string.ascii_letters + string.digits + "-_.=+/ \x00é"))
        return "".join(chars)
    # segments of different real tokens spliced together
    other = GOOD[draw(st.sampled_from(ALGORITHMS))]
    parts = good.split(".")
    parts[draw(st.integers(0, 2))] = other.split(".")[draw(st.integers(0, 2))]
    return ".".join(parts)


def test_the_real_tokens_verify() -> None:
    for alg, codec in CODECS.items():
        assert codec.verify(GOOD[alg]).sub == "alice"


@FUZZ
@given(token_texts(), st.sampled_from(ALGORITHMS))
def test_verify_raises_only_invalid_token(token: str, alg: str) -> None:
    assume(token != GOOD[alg])
    try:
        claims = CODECS[alg].verify(token)
    except InvalidToken as exc:
        assert exc.reason
        return
    # Accepted: only ever a token this ring signed, unchanged in what it says.
    assert claims.sub == "alice" and claims.iss == "https://a.test"


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_verify_refuses_non_strings(value: Any) -> None:
    try:
        CODECS["EdDSA"].verify(value)
    except InvalidToken:
        return
    raise AssertionError("accepted a non-string")


# -- safe redirects -------------------------------------------------------------------

_redirect_pieces = st.one_of(
    st.sampled_from(["/", "//", "\\", "/\\", "%2f", "%2F", "%5c", "%5C", "%25", "%252f", ":", "@",
                     "http:", "https://evil.example", "javascript:", "\t", "\n", "\r", "\x00",
                     "\u2028", "\u200b", "\ufeff", "%09", "%0a", "%00", "?", "#", ".", "..",
                     "／", "＼", "%E2%80%A8", "evil.example", "account"]),
    st.text(max_size=10),
)  # fmt: skip
redirect_targets = st.one_of(
    st.text(max_size=100), st.lists(_redirect_pieces, max_size=12).map("".join), st.none()
)


def _local(path: str) -> bool:
    return (
        path.startswith("/")
        and not path.startswith("//")
        and "\\" not in path
        and not any(unicodedata.category(ch)[0] == "C" for ch in path)
    )


@FUZZ
@given(redirect_targets)
def test_safe_next_gives_the_default_or_a_local_path(value: str | None) -> None:
    default = "/account"
    out = safe_next(value, default)
    if out == default:
        return
    assert out == value
    assert _local(out) and out.isascii() and out.isprintable()
    decoded = out
    for _ in range(6):  # however often a browser or proxy decodes it
        decoded = unquote(decoded)
        assert _local(decoded), (out, decoded)


# -- CSRF -------------------------------------------------------------------------------

SIGNER = CSRFSigner([b"k" * 32, b"o" * 32])
OTHER = CSRFSigner([b"x" * 32])
csrf_tokens = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.text(alphabet=string.ascii_letters + string.digits + "-_=+/", min_size=40, max_size=46),
    st.binary(min_size=32, max_size=32).map(lambda b: _b64(b)),
    st.just(OTHER.token_for(ANONYMOUS_BINDING)),
)
bindings = st.one_of(st.just(ANONYMOUS_BINDING), st.text(max_size=80))


@FUZZ
@given(csrf_tokens, bindings)
def test_csrf_verify_never_raises(token: str | None, binding: str) -> None:
    assert SIGNER.verify(token, binding) in (True, False)


@FUZZ
@given(bindings, bindings)
def test_csrf_tokens_are_bound(binding: str, other: str) -> None:
    token = SIGNER.token_for(binding)
    assert SIGNER.verify(token, binding)
    assert SIGNER.verify(token, other) == (other == binding)
    assert not OTHER.verify(token, binding)


_url_pieces = st.one_of(
    st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "//", "[", "]", "::1", ":",
                     ":99999", ":0", ":-1", "@", "user:pw@", "example.com", "ex%61mple.com",
                     "xn--", "/", "?", "#", "\\", "\x00", " ", "null", "[::1]", "[v1.x]"]),
    st.text(max_size=10),
)  # fmt: skip


@FUZZ
@given(st.one_of(st.text(max_size=100), st.lists(_url_pieces, max_size=8).map("".join)))
def test_origin_of_never_raises(url: str) -> None:
    origin = origin_of(url)
    if origin is not None:
        assert re.match(r"^https?://", origin)
        assert origin_of(origin) == origin  # an origin is its own origin


# -- request limits ---------------------------------------------------------------------

MAX_HEADERS, MAX_VALUE, MAX_BODY = 600, 200, 300
_header_names = st.sampled_from(
    [b"cookie", b"authorization", b"content-type", b"x-forwarded-for", b"user-agent", b"x-a"]
)
_content_lengths = st.one_of(
    st.integers(0, 2 * MAX_BODY).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b"-1", b"1e3", b" 10", b"10 ", b"0x10", b"\xd9\xa3", b"99999999999999"]),
)
header_sets = st.lists(
    st.tuples(
        st.one_of(_header_names, st.just(b"content-length")),
        st.integers(0, 3 * MAX_VALUE).map(lambda n: b"v" * n),
    ),
    max_size=8,
)


@st.composite
def requests_to_limit(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    headers = []
    for name, value in draw(header_sets):
        if name == b"content-length":
            value = draw(_content_lengths)
        headers.append((name, value))
    chunks = draw(st.lists(st.integers(0, MAX_BODY).map(lambda n: b"x" * n), max_size=4))
    return headers, chunks


def _expected(headers: list[tuple[bytes, bytes]], body: int) -> tuple[int, bool]:
    """What the middleware must answer, from its documented rules in order,
    and whether it can tell from the headers alone (the app never runs)."""
    total, declared = 0, None
    for name, value in headers:
        total += len(name) + len(value)
        if len(value) > MAX_VALUE or total > MAX_HEADERS:
            return 431, True
        if name == b"content-length":
            if not value.isdigit() or declared is not None:
                return 400, True
            declared = int(value)
    if declared is not None and declared > MAX_BODY:
        return 413, True
    return (413 if body > MAX_BODY else 200), False


@FUZZ
@given(requests_to_limit())
def test_request_limits(req: tuple[list[tuple[bytes, bytes]], list[bytes]]) -> None:
    headers, chunks = req
    reached = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal reached
        reached = True
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = RequestLimitsMiddleware(
        app, max_header_bytes=MAX_HEADERS, max_header_value=MAX_VALUE, max_body_bytes=MAX_BODY
    )
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/auth/login", "headers": headers}
    asyncio.run(middleware(scope, receive, send))  # never raises

    status = sent[0]["status"]
    expected, on_headers = _expected(headers, sum(map(len, chunks)))
    assert status == expected, (status, expected)
    if status != 200:
        assert 400 <= status < 500
        assert set(json.loads(sent[1]["body"])) == {"error", "detail"}
        if on_headers:
            assert not reached  # refused before anything parsed
    else:
        assert reached and sent[1]["body"] == b"ok"


# -- emails ---------------------------------------------------------------------------------

_email_pieces = st.one_of(
    st.sampled_from(["@", "＠", ".", "..", "ada", "ＡＤＡ", "example.com", "\u200b", "\u00ad",
                     "\ufeff", " ", "\t", "\n", "\x00", "ß", "ﬀ", "İ", "\ud7ff", "\U000e0001",
                     "ǅ", "ᾈ", "\u0345", "x" * 64, "y" * 250]),
    st.text(max_size=8),
)  # fmt: skip
emails = st.one_of(
    st.text(max_size=80), st.emails(), st.lists(_email_pieces, max_size=10).map("".join)
)


@FUZZ
@given(emails)
def test_normalize_email_raises_only_invalid_request(raw: str) -> None:
    try:
        email = normalize_email(raw)
    except InvalidRequest as exc:
        assert str(exc) == "Invalid email address."  # fixed text, never the input
        return
    assert normalize_email(email) == email  # idempotent
    assert email.count("@") == 1 and len(email) <= 254
    assert not any(ch.isspace() for ch in email)


@given(st.one_of(st.none(), st.integers(), st.binary(), st.text(min_size=1025, max_size=1100)))
def test_normalize_email_refuses_non_strings_and_huge_input(raw: Any) -> None:
    try:
        normalize_email(raw)
    except InvalidRequest:
        return
    raise AssertionError("accepted")


# -- refresh tokens ---------------------------------------------------------------------------

_b64chars = string.ascii_letters + string.digits + "-_"
refresh_texts = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda a, sep, b: f"{a}{sep}{b}",
        st.text(alphabet=_b64chars + "=+/\u0661", min_size=20, max_size=24),
        st.sampled_from([".", "", "..", ":", "\u2024"]),
        st.text(alphabet=_b64chars + "=+/\u0661", min_size=41, max_size=45),
    ),
    st.just(refresh.new_token(b"k" * 32)).map(lambda t: t[:-1] + "B"),  # a non-canonical last char
    st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())),
)


@FUZZ
@given(refresh_texts)
def test_refresh_parsing_never_raises(token: Any) -> None:
    parsed = refresh.parse(token)
    assert refresh.is_well_formed(token) == (parsed is not None)
    if parsed is None:
        assert refresh.family_id_of(token) is None
        try:
            refresh.successor(token, b"s" * 32)
        except InvalidGrant:
            return
        raise AssertionError("a malformed token got a successor")
    family, secret = parsed
    assert token == f"{family}.{secret}"
    assert refresh.is_family_id(family)
    assert refresh.parse(refresh.successor(token, b"s" * 32)) is not None


def test_fresh_refresh_tokens_parse() -> None:
    for _ in range(50):
        token = refresh.new_token(b"k" * 32)
        assert refresh.parse(token) == tuple(token.split("."))
