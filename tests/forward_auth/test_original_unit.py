"""The original request and the answer's headers, unit by unit: exact
messages, the limits, every field of the rebuilt request."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gatepass.errors import InvalidRequest
from gatepass.forward_auth import cache_headers, identity_headers, normalize_path, original_request
from gatepass.forward_auth.headers import ANONYMOUS_HEADERS, VARY, ascii_value, rfc8187
from gatepass.forward_auth.original import MAX_URL


def headers(**values: str) -> Callable[[str], str | None]:
    table = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return table.get


def detail(**sent: str) -> str:
    with pytest.raises(InvalidRequest) as caught:
        original_request(headers(**sent))
    text: str = caught.value.detail
    return text


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ({"x_original_url": "https://a.test/ x"},
         "X-Original-URL must be printable ASCII without spaces."),
        ({"x_original_url": "/x"}, "X-Original-URL must be an absolute http(s) URL."),
        ({"x_original_url": "https:///x"}, "X-Original-URL must be an absolute http(s) URL."),
        ({"x_original_url": "https://u@a.test/"},
         "X-Original-URL must be an absolute http(s) URL."),
        ({"x_original_url": "https://a.test//x"}, "The forwarded URI must be an origin-form path."),
        ({"x_original_url": "https://a.test?x"}, "The forwarded URI must be an origin-form path."),
        ({"x_original_url": "https://a_b.test/"}, "The forwarded host is not a valid host name."),
        ({"x_forwarded_host": "a.test"},
         "X-Forwarded-Host and X-Forwarded-Uri must be sent together."),
        ({"x_forwarded_uri": "/"}, "X-Forwarded-Host and X-Forwarded-Uri must be sent together."),
        ({"x_forwarded_host": "a.test", "x_forwarded_uri": "/", "x_forwarded_proto": "ftp"},
         "X-Forwarded-Proto must be http or https."),
        ({"x_forwarded_host": "a .test", "x_forwarded_uri": "/"},
         "X-Forwarded-Host must be printable ASCII without spaces."),
        ({"x_forwarded_host": "a.test", "x_forwarded_uri": "/ x"},
         "X-Forwarded-Uri must be printable ASCII without spaces."),
        ({"x_forwarded_host": "a.test", "x_forwarded_uri": "x"},
         "The forwarded URI must be an origin-form path."),
        ({"x_forwarded_host": "a.test", "x_forwarded_uri": "/", "x_forwarded_method": "GET1"},
         "The forwarded method is not an HTTP method."),
        ({"x_forwarded_host": "a.test", "x_forwarded_uri": "/%ff"},
         "The forwarded path is not valid UTF-8."),
        ({"x_forwarded_host": "a.test", "x_forwarded_uri": "/%7f"},
         "The forwarded path contains characters no path should hold."),
    ],
)  # fmt: skip
def test_exact_messages(sent: dict[str, str], message: str) -> None:
    assert detail(**sent) == message


def test_the_url_limit() -> None:
    path = "/" + "a" * (MAX_URL - len("https://a.test") - 1)
    url = "https://a.test" + path
    assert len(url) == MAX_URL
    found = original_request(headers(x_original_url=url))
    assert found is not None and found.path == path
    assert detail(x_original_url=url + "a") == (
        "X-Original-URL must be printable ASCII without spaces."
    )
    uri = "/" + "a" * (MAX_URL - 1)
    found = original_request(headers(x_forwarded_host="a.test", x_forwarded_uri=uri))
    assert found is not None and found.path == uri
    assert detail(x_forwarded_host="a.test", x_forwarded_uri=uri + "a") == (
        "X-Forwarded-Uri must be printable ASCII without spaces."
    )


def test_every_field_of_an_nginx_request() -> None:
    found = original_request(headers(
        x_original_url="http://A.Test:8080/p/../q;x=1?y=%2F#frag", x_original_method=" delete ",
    ))  # fmt: skip
    assert found is not None
    assert (found.scheme, found.host, found.authority, found.target, found.path, found.method) == (
        "http", "a.test", "a.test:8080", "/p/../q;x=1?y=%2F", "/q", "DELETE"
    )  # fmt: skip
    assert found.url == "http://a.test:8080/p/../q;x=1?y=%2F"


def test_an_nginx_url_without_a_path_is_the_root() -> None:
    found = original_request(headers(x_original_url="https://a.test"))
    assert found is not None and (found.target, found.path, found.method) == ("/", "/", None)


def test_the_original_method_wins_over_the_forwarded_one() -> None:
    found = original_request(headers(
        x_original_url="https://a.test/", x_original_method="PUT", x_forwarded_method="GET"
    ))  # fmt: skip
    assert found is not None and found.method == "PUT"
    found = original_request(headers(x_original_url="https://a.test/", x_forwarded_method="get"))
    assert found is not None and found.method == "GET"


def test_every_field_of_a_caddy_request() -> None:
    found = original_request(headers(
        x_forwarded_proto=" HTTPS ", x_forwarded_host="A.test", x_forwarded_uri="/a#b#c",
        x_forwarded_method="patch",
    ))  # fmt: skip
    assert found is not None
    assert (found.scheme, found.host, found.authority, found.target, found.path, found.method) == (
        "https", "a.test", "a.test", "/a", "/a", "PATCH"
    )  # fmt: skip


def test_the_proto_defaults_to_http() -> None:
    found = original_request(headers(x_forwarded_host="a.test", x_forwarded_uri="/"))
    assert found is not None and found.scheme == "http" and found.url == "http://a.test/"
    found = original_request(
        headers(x_forwarded_host="a.test", x_forwarded_uri="/", x_forwarded_proto="http")
    )
    assert found is not None and found.scheme == "http"


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/a?b?c", "/a"), ("/a#b#c", "/a"), ("/a?b#c", "/a"), ("/a;b;c/d", "/a/d"),
        ("/a/b;p=1;q=2", "/a/b"), ("/a%20b", "/a b"), ("/%7e", "/~"), ("/a/..;x", "/"),
        ("/a/b/..;x/c", "/a/c"), ("/a/.;x", "/a/"),
    ],
)  # fmt: skip
def test_more_paths(target: str, path: str) -> None:
    assert normalize_path(target) == path


@pytest.mark.parametrize("target", ["/%00", "/%1f", "/%7f", "/%5c", "/a\\b", "/%0d%0a"])
def test_control_characters_and_backslashes_are_refused(target: str) -> None:
    with pytest.raises(InvalidRequest):
        normalize_path(target)


def test_ascii_values_pass_as_they_are() -> None:
    assert ascii_value("") == ""
    assert ascii_value(" a~z ") == " a~z "
    assert ascii_value("a%b") == "a%25b"
    assert ascii_value("a\x7fb") == "a%7Fb"
    assert ascii_value("a\x1fb") == "a%1Fb"
    assert ascii_value("é") == "%C3%A9"


def test_rfc8187_keeps_attr_chars_only() -> None:
    assert rfc8187("!#$&+^`|") == "!#$&+^`|"
    assert rfc8187("a-b.c_d~e") == "a-b.c_d~e"
    assert rfc8187("@ /:;,=?%\"'()*") == "%40%20%2F%3A%3B%2C%3D%3F%25%22%27%28%29%2A"


def test_identity_headers_of_a_user() -> None:
    assert identity_headers("ü", "a b@x.test", ["z", "a", "m"]) == {
        "x-auth-user-id": "%C3%BC",
        "x-auth-email": "a b@x.test",
        "x-auth-email*": "UTF-8''a%20b%40x.test",
        "x-auth-roles": "a,m,z",
    }
    assert ANONYMOUS_HEADERS == {
        "x-auth-user-id": "", "x-auth-email": "", "x-auth-email*": "", "x-auth-roles": ""
    }  # fmt: skip


def test_cache_headers_exactly() -> None:
    assert cache_headers(1, cacheable=True) == {"cache-control": "private, max-age=1", "vary": VARY}
    for max_age, cacheable in ((0, True), (-1, True), (5, False)):
        assert cache_headers(max_age, cacheable=cacheable) == {
            "cache-control": "no-store", "vary": VARY
        }  # fmt: skip
