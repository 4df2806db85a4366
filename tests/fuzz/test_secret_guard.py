"""The secret guard itself: it sees what it must see, and finds what it must find.

(The guard runs for the whole session from ``tests/conftest.py``; see
``tests/fuzz/secret_guard.py``.)
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import httpx

from gatepass.errors import InvalidToken
from gatepass.tokens import refresh
from tests.fuzz.secret_guard import GUARD, SecretGuard, SecretRegistry, harvest_response
from tests.server.conftest import PASSWORD, login, make_client, register

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9." + "s" * 86


def test_shapes_are_found_without_being_remembered() -> None:
    registry = SecretRegistry()
    assert registry.scan(f"user logged in with {JWT}") == ["a JWT"]
    token = refresh.new_token(b"k" * 32)
    assert registry.scan(f"refresh {token} rotated") == ["a refresh token"]
    assert registry.scan(f"cookie={secrets.token_urlsafe(32)};") == [
        "a 43-character base64url token (session id or CSRF token)"
    ]
    assert registry.scan("GET /auth/me 200, user 5e4f94c086aa45e89bb2c08cf7387537") == []
    assert registry.scan("sha256 " + "ab" * 32) == []  # hashes are not secrets


def test_remembered_secrets_are_found_anywhere_in_a_line() -> None:
    registry = SecretRegistry()
    token = secrets.token_urlsafe(24)  # not 43 long: found only because remembered
    registry.remember(token)
    registry.remember(PASSWORD, kind="password")
    assert registry.scan(f"x{token}y") == ["a remembered token"]
    assert registry.scan(f"Bearer {token}") == ["a remembered token"]
    assert registry.scan(f"login failed for password={PASSWORD!r}") == ["a remembered password"]
    assert registry.scan("nothing to see") == []
    registry.remember("password", kind="password")  # too short or plain to tell from text
    registry.remember("aaaaaaaaaaaa", kind="password")
    assert registry.scan("the password field is aaaaaaaaaaaa") == []


def test_responses_teach_the_guard_their_secrets() -> None:
    registry = SecretRegistry()
    token = refresh.new_token(b"k" * 32)
    pair = {"access_token": JWT, "refresh_token": token, "token_type": "Bearer"}
    session = secrets.token_urlsafe(32)
    response = httpx.Response(
        200, json=pair, headers=[("set-cookie", f"__Host-gatepass={session}; Path=/; Secure")]
    )
    harvest_response(registry, response)
    assert {JWT, pair["refresh_token"], session} <= registry.tokens


def test_findings_name_the_test_and_logger_but_never_the_secret(tmp_path: Path) -> None:
    guard = SecretGuard()
    guard.current = "tests/x.py::test_leak"
    secret = secrets.token_urlsafe(20)
    guard.registry.remember(secret)
    guard.capture("logger 'gatepass.server' (INFO)", f"issued {secret}")
    guard.capture("the message of a InvalidToken", InvalidToken(f"bad {secret}"))
    (tmp_path / "server.log").write_text(f"WARNING leaked {secret}\n")
    found = guard.check_buffer() + guard.check_files([tmp_path / "server.log"], tmp_path)
    assert [str(f) for f in found] == [
        "tests/x.py::test_leak: a remembered token in logger 'gatepass.server' (INFO)",
        "tests/x.py::test_leak: a remembered token in the message of a InvalidToken",
        "server.log: a remembered token in a server log file",
    ]
    assert all(secret not in str(f) for f in found)


def test_the_session_guard_is_watching(tmp_path: Path) -> None:
    """Installed for this session: every level of every logger reaches it, and
    the traffic of an in-process server teaches it the secrets."""
    assert GUARD._undo, "the guard is not installed"
    marker = secrets.token_hex(8)
    logging.getLogger("some.library").debug("debug line %s", marker)
    assert any(marker in str(text) for _, text in GUARD._buffer)
    with make_client(tmp_path) as client:
        register(client)
        session = login(client)
    assert session in GUARD.registry.tokens
    assert PASSWORD in GUARD.registry.passwords
