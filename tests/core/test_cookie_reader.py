"""The per-header cookie memos answer exactly as the strict parser does, and stay bounded."""

from __future__ import annotations

import secrets

import pytest

from gatepass.asgi import AuthMiddleware
from gatepass.asgi.types import CookieReader
from gatepass.cookies import read_cookie
from gatepass.sessions.manager import SessionManager
from gatepass.sessions.tokens import token_key
from gatepass.stores.memory import MemorySessionStore

NAME = "__Host-gatepass-csrf"
TOKEN = secrets.token_urlsafe(32)
HEADERS = [
    f"{NAME}={TOKEN}",
    f"a=1; {NAME}={TOKEN}; b=2",
    f"{NAME}={TOKEN}; {NAME}=planted",  # duplicate: refused
    f"__host-gatepass-csrf={TOKEN}",  # look-alike alone
    f"{NAME}={TOKEN}; __HOST-gatepass-csrf=x",  # look-alike beside it
    f'{NAME}="{TOKEN}"',
    f"{NAME}=bad value",
    f"{NAME}",
    "other=1",
    "",
]


@pytest.mark.parametrize("header", HEADERS)
def test_answers_are_the_parser_s_every_time(header: str) -> None:
    reader = CookieReader(NAME, str)
    expected = read_cookie(header, NAME)
    assert reader(header) == expected
    assert reader(header) == expected  # from the memo
    assert header in reader._memo


def test_each_header_keeps_its_own_answer() -> None:
    reader = CookieReader(NAME, str)
    values = {f"{NAME}={secrets.token_urlsafe(16)}" for _ in range(50)}
    for header in values:
        reader(header)
    for header in values:
        assert reader(header) == header.split("=", 1)[1]
    assert reader(None) is None


def test_the_memo_is_bounded_and_long_headers_are_not_kept() -> None:
    reader = CookieReader(NAME, str, max_entries=8, max_header=64)
    for i in range(20):
        assert reader(f"{NAME}=v{i}") == f"v{i}"
        assert len(reader._memo) <= 8
    long = f"{NAME}=v; pad=" + "x" * 64
    assert reader(long) == "v"
    assert long not in reader._memo


def test_the_session_cookie_memo_is_bounded_and_exact() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        return None

    middleware = AuthMiddleware(app, sessions=SessionManager(MemorySessionStore()))
    tokens = [secrets.token_urlsafe(32) for _ in range(5000)]
    for token in tokens:
        assert middleware._session_cookie(f"__Host-gatepass={token}") == (token, token_key(token))
    assert len(middleware._session_cookie._memo) <= 4096
    # A value that is not the shape we mint: the token, no key (the browser
    # is told to drop it); no session cookie at all: None.
    assert middleware._session_cookie("__Host-gatepass=short") == ("short", None)
    assert middleware._session_cookie("other=1") is None
    long = f"__Host-gatepass={tokens[0]}; pad=" + "x" * 2000
    assert middleware._session_cookie(long) == (tokens[0], token_key(tokens[0]))
    assert long not in middleware._session_cookie._memo
