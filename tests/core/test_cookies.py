"""The cookie builder and the strict parser (SECURITY.md 18–20)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatepass.cookies import CookieSpec, parse_cookie_header, read_cookie
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


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=y", "a;Domain=evil", "a b", 'a"', "é"])
def test_values_cannot_inject_attributes_or_headers(value: str) -> None:
    with pytest.raises(ValueError):
        CookieSpec().header(value)


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
