"""The cookie builder and the strict parser (SECURITY.md 18–20)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatepass.cookies import CookieSpec, ParsedCookies, parse_cookie_header, read_cookie
from gatepass.errors import ConfigurationError

TOKEN = "A" * 43


def test_default_cookie_is_host_prefixed_secure_httponly_lax() -> None:
    header = CookieSpec().header(TOKEN)
    assert header == f"__Host-gatepass={TOKEN}; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_samesite_is_always_explicit() -> None:
    for same_site in ("lax", "strict", "none"):
        spec = CookieSpec(name="sid", same_site=same_site)  # type: ignore[arg-type]
        assert f"SameSite={same_site.capitalize()}" in spec.header("v")
        assert "SameSite=" in spec.deletion_header()


def test_every_attribute_is_configurable() -> None:
    spec = CookieSpec(
        name="__Secure-sid", domain="example.com", path="/app", same_site="strict",
        http_only=False, max_age=600,
    )  # fmt: skip
    header = spec.header("v")
    assert header.startswith("__Secure-sid=v; Max-Age=600; Expires=")
    assert "GMT" in header
    assert "Path=/app; Domain=example.com; Secure; SameSite=Strict" in header
    assert "HttpOnly" not in header


def test_deletion_matches_the_cookie_it_deletes() -> None:
    spec = CookieSpec(name="__Secure-sid", domain="example.com", path="/app")
    deletion = spec.deletion_header()
    assert deletion.startswith("__Secure-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970")
    assert deletion.endswith("Path=/app; Domain=example.com; Secure; HttpOnly; SameSite=Lax")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "sid", "same_site": "none", "secure": False},
        {"name": "__Host-sid", "domain": "example.com"},
        {"name": "__Host-sid", "secure": False},
        {"name": "__Host-sid", "path": "/app"},
        {"name": "__host-sid", "secure": False},
        {"name": "__Secure-sid", "secure": False},
        {"name": "bad name"},
        {"name": "sid;x"},
        {"name": "sid", "path": "/a;Domain=evil"},
        {"name": "sid", "path": "nopath"},
        {"name": "sid", "domain": "evil.com; Secure"},
        {"name": "sid", "same_site": "sometimes"},
        {"name": "sid", "max_age": -1},
    ],
)
def test_unsafe_or_invalid_combinations_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CookieSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"name": "bad name"}, "the name must be an RFC 6265 token"),
        ({"same_site": "sometimes"}, "SameSite must be 'lax', 'strict' or 'none'"),
        ({"name": "sid", "same_site": "none", "secure": False},
         "SameSite=None requires Secure (browsers drop it otherwise)"),
        ({"secure": False}, "a __Host- cookie requires Secure"),
        ({"domain": "example.com"}, "a __Host- cookie cannot have a Domain"),
        ({"path": "/app"}, "a __Host- cookie requires Path=/"),
        ({"name": "__secure-x", "secure": False}, "a __Secure- cookie requires Secure"),
        ({"name": "sid", "path": "app"},
         "Path must start with '/' and contain no ';' or control characters"),
        ({"name": "sid", "domain": "a b"}, "Domain is not a valid host name"),
        ({"name": "sid", "max_age": -1}, "Max-Age cannot be negative"),
    ],
)  # fmt: skip
def test_each_refusal_names_its_reason(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CookieSpec(**kwargs)  # type: ignore[arg-type]
    name = kwargs.get("name", "__Host-gatepass")
    assert str(info.value) == f"Unsafe cookie settings for {name!r}: {problem}"


def test_max_age_zero_is_allowed_and_expires_follows_the_lifetime() -> None:
    assert "; Max-Age=0; " in CookieSpec(name="sid", max_age=0).header("v")  # not negative
    spec = CookieSpec(name="sid", max_age=600)
    for lifetime, header in ((600, spec.header("v")), (60, spec.header("v", max_age=60)),
                             (0, spec.header("v", max_age=0))):  # fmt: skip
        assert f"; Max-Age={lifetime}; " in header
        expires = header.split("; Expires=")[1].split(";")[0]
        when = parsedate_to_datetime(expires).timestamp()
        assert abs(when - (time.time() + lifetime)) <= 2


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=y", "a;Domain=evil", "a b", 'a"', "é"])
def test_values_cannot_inject_attributes_or_headers(value: str) -> None:
    with pytest.raises(ValueError) as info:
        CookieSpec().header(value)
    assert str(info.value) == "Cookie value contains characters that are not allowed."


def test_parses_simple_header() -> None:
    parsed = parse_cookie_header(f"a=1; __Host-gatepass={TOKEN};b=\"2\"")
    assert parsed.get("__Host-gatepass") == TOKEN
    assert parsed.get("a") == "1"
    assert parsed.get("b") == "2"


@pytest.mark.parametrize(
    "header",
    [
        f"__Host-gatepass={TOKEN}; __Host-gatepass=planted",
        f"__Host-gatepass=planted; __Host-gatepass={TOKEN}",
        f"__Host-gatepass={TOKEN}; __host-gatepass=planted",
        f"__Host-gatepass={TOKEN}; __HOST-GATEPASS=planted",
        f"\xa0__Host-gatepass=planted; __Host-gatepass={TOKEN}",
        f"__Host-gatepass={TOKEN}; __Host-gatepass\u200b=planted",
        f"__Host-gatepass={TOKEN}; \uff3f\uff3fHost-gatepass=planted",
        f"__Host-gatepass={TOKEN}; __Host-gatepass =planted",
        f"__Host-gatepass=bad value{TOKEN}",
    ],
)
def test_duplicates_and_lookalikes_make_the_name_ambiguous(header: str) -> None:
    parsed = parse_cookie_header(header)
    assert parsed.get("__Host-gatepass") is None
    assert "__Host-gatepass" in parsed.ambiguous or "__Host-gatepass" not in parsed.values


def test_lookalike_alone_is_never_read_as_the_real_cookie() -> None:
    for header in ("\xa0__Host-gatepass=x", "__host-gatepass=x", "__Host-gatepass\u200b=x"):
        assert parse_cookie_header(header).get("__Host-gatepass") is None


def test_oversized_header_is_not_parsed() -> None:
    parsed = parse_cookie_header(f"__Host-gatepass={TOKEN}; pad=" + "x" * 9000)
    assert parsed.oversized
    assert parsed.get("__Host-gatepass") is None


@pytest.mark.parametrize("header", ["", ";;;", "=", "noequals", "a=b=c", "\x00=\x00", "%%%=;"])
def test_garbage_never_raises(header: str) -> None:
    parse_cookie_header(header)


_NAMES = st.sampled_from(
    ["__Host-gatepass", "__host-gatepass", "__HOST-GATEPASS", "\xa0__Host-gatepass",
     "__Host-gatepass\u200b", "\uff3f\uff3fHost-gatepass", "a", "b", "", " __Host-gatepass"]
)  # fmt: skip
_VALUES = st.one_of(
    st.just("A" * 43), st.text(max_size=8), st.just('"x"'), st.just(""), st.just("a b")
)


@given(st.lists(st.tuples(_NAMES, st.sampled_from(["=", ""]), _VALUES), max_size=6),
       st.sampled_from(["; ", ";", " ; "]))  # fmt: skip
def test_read_cookie_agrees_with_the_full_parser(
    pairs: list[tuple[str, str, str]], sep: str
) -> None:
    header = sep.join(f"{n}{eq}{v}" for n, eq, v in pairs)
    assert read_cookie(header, "__Host-gatepass") == parse_cookie_header(header).get(
        "__Host-gatepass"
    )


@given(st.text(max_size=200))
def test_read_cookie_agrees_on_arbitrary_text(header: str) -> None:
    for name in ("__Host-gatepass", "a"):
        assert read_cookie(header, name) == parse_cookie_header(header).get(name)


# Each of these hides a planted value in front of the real one, followed by
# something the parser must step over (a duplicate, a bad value, a bare word,
# an empty pair): stopping there instead of reading on would return "planted".
@pytest.mark.parametrize(
    "middle",
    ["a=1; a=2", "a=bad value", 'a="x', "noequals", "", "bad name=1", "a=1;; b=2", "=x"],
)
def test_the_parser_reads_past_every_skipped_pair(middle: str) -> None:
    header = f"H=planted; {middle}; H=real"
    parsed = parse_cookie_header(header)
    assert parsed.get("H") is None
    assert "H" in parsed.ambiguous
    assert "H" not in parsed.values
    assert read_cookie(header, "H") is None


@pytest.mark.parametrize(
    "lookalike",
    [
        "__Host-gate pass", "__Host-gate\xa0pass", "__Host-gate\x01pass", "__Host-gate\x7fpass",
        "__Host-gate\tpass", "__Host-gatepass\x00", "\x1f__Host-gatepass", "__Host-gate\u200bpass",
        "__Host-gate\u3000pass", "__Host-gate\u2028pass", "__HOST-gatepass",
        "\ufeff__Host-gatepass",
        "__Host-gatepa\u017fs",  # LATIN SMALL LETTER LONG S casefolds to "s"
    ],
)  # fmt: skip
def test_lookalikes_with_interior_space_nbsp_or_controls(lookalike: str) -> None:
    for header in (f"{lookalike}=planted; __Host-gatepass={TOKEN}",
                   f"__Host-gatepass={TOKEN}; {lookalike}=planted"):  # fmt: skip
        parsed = parse_cookie_header(header)
        assert parsed.get("__Host-gatepass") is None, repr(header)
        assert "__Host-gatepass" in parsed.ambiguous
        assert read_cookie(header, "__Host-gatepass") is None
    # Alone, a look-alike is never read as the real cookie either.
    assert parse_cookie_header(f"{lookalike}=planted").get("__Host-gatepass") is None
    assert read_cookie(f"{lookalike}=planted", "__Host-gatepass") is None


def test_unrelated_names_do_not_make_each_other_ambiguous() -> None:
    header = f"__Host-gatepass={TOKEN}; __Host-gatepass-csrf=c; sid=1; SID2=2; a=\"q\""
    parsed = parse_cookie_header(header)
    assert parsed.ambiguous == frozenset()
    assert parsed.values == {"__Host-gatepass": TOKEN, "__Host-gatepass-csrf": "c", "sid": "1",
                             "SID2": "2", "a": "q"}  # fmt: skip
    for name, value in parsed.values.items():
        assert read_cookie(header, name) == value


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (f"H={TOKEN}", TOKEN), (f"  H = {TOKEN} ", TOKEN), (f"\tH=\t{TOKEN}\t", TOKEN),
        ('H=""', ""), ('H="v"', "v"), ("H=", ""), ('H="', None), ('H=""x"', None),
        ("H=XvX", "XvX"), ("H= X ", "X"), ("H; H=v", "v"),
        ("H=a b", None), ("H=a,b", None), ("H=a\\b", None), ("H=\xa0v", None), ("H=v\x7f", None),
        ("H=a=b", "a=b"), ("H", None), ("h=v", None),
    ],
)  # fmt: skip
def test_values_are_read_exactly(header: str, value: str | None) -> None:
    assert parse_cookie_header(header).get("H") == value
    assert read_cookie(header, "H") == value


def test_size_limit_is_inclusive_and_configurable() -> None:
    header = f"H={TOKEN}; pad=" + "x" * 100
    assert parse_cookie_header(header, max_size=len(header)).get("H") == TOKEN
    assert read_cookie(header, "H", max_size=len(header)) == TOKEN
    over = parse_cookie_header(header, max_size=len(header) - 1)
    assert over.oversized and over.get("H") is None and over.values == {}
    assert read_cookie(header, "H", max_size=len(header) - 1) is None


def test_names_are_read_exactly() -> None:
    header = "XHX=1; \tX=2 ; Y\t=3"
    parsed = parse_cookie_header(header)
    assert parsed.values == {"XHX": "1", "X": "2", "Y": "3"}
    for name, value in parsed.values.items():
        assert read_cookie(header, name) == value


def test_a_bad_value_makes_exactly_its_name_ambiguous() -> None:
    parsed = parse_cookie_header(f"H=a b; __Host-gatepass={TOKEN}")
    assert parsed.ambiguous == {"H"}
    assert parsed.values == {"__Host-gatepass": TOKEN}
    oversized = parse_cookie_header("H=v", max_size=2)
    assert oversized.ambiguous == frozenset() and oversized.values == {}


def test_parsed_cookies_never_hand_out_an_ambiguous_or_oversized_value() -> None:
    # The contract of ParsedCookies itself, whoever built it.
    assert ParsedCookies({"H": "v"}, frozenset({"H"})).get("H") is None
    assert ParsedCookies({"H": "v"}, frozenset(), oversized=True).get("H") is None
    assert ParsedCookies({"H": "v"}, frozenset({"G"})).get("H") == "v"
