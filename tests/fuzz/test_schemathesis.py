"""schemathesis against a real ``gatepass serve``, driven by the server's own ``/openapi.json``.

One subprocess server on a free loopback port, SQLite in a temporary data dir.
Every operation is fuzzed (schema-valid and schema-invalid data, bounded
examples) three times:

* **anonymous**: whatever schemathesis makes up, forged cookies and Bearer
  tokens included.  Nothing of that may change any state, whatever the answer.
* **session**: a real session cookie, its CSRF cookie and ``X-CSRF-Token``.
* **bearer**: a real access token.

Every answer must be no 5xx, documented, and conform to the document (status,
content type, headers, body).  Every refused answer (4xx) must leave the
users, sessions, refresh families, revocations and generations exactly as
they were (counted straight from the SQLite database before and after).
Login throttling kicks in under this load: 429 is a documented answer.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi import checks

from gatepass.server import openapi
from gatepass.server.app import create_app
from gatepass.server.settings import Settings
from tests.conftest import remember_secret
from tests.serving import ServeProcess

pytestmark = pytest.mark.slow

EMAIL = "fuzz-admin@example.com"
PASSWORD = "fuzzing is a long and secret passphrase"
#: The server believes X-Forwarded-For from loopback only for our own set-up
#: logins, so the fuzzer's failed logins (which throttle 127.0.0.1) never
#: throttle the re-logins that restore credentials after a logout.
SETUP_ADDRESS = "198.51.100.7"
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


class FuzzServer(ServeProcess):
    def __init__(self, base: Path, **settings: str) -> None:
        super().__init__(base, log_level="info", never_logged=[PASSWORD], **settings)
        self.http = requests.Session()

    def check_log(self) -> None:
        super().check_log()
        text = self.log()
        assert " 500 " not in text, text

    # -- state, straight from the database ------------------------------------

    def state(self) -> dict[str, str]:
        """A digest of each table a refused request must not touch."""
        queries = {
            "users": "SELECT id, email, password_hash, roles, disabled FROM gatepass_users",
            "sessions": "SELECT key, user_id, roles FROM gatepass_sessions",
            "refresh families": "SELECT family_id, current_hash, revoked"
            " FROM gatepass_refresh_families",
            "revocations": "SELECT kind, user_id, jti FROM gatepass_revoked",
            "generations": "SELECT user_id, generation FROM gatepass_generations",
            "one-time tokens": "SELECT token_hash, purpose, user_id FROM gatepass_one_time_tokens",
        }
        db = sqlite3.connect(f"file:{self.data_dir / 'gatepass.db'}?mode=ro", uri=True)
        try:
            out = {}
            for name, query in queries.items():
                try:
                    rows = sorted(map(repr, db.execute(query).fetchall()))
                except sqlite3.OperationalError as exc:  # table not created yet
                    rows = [f"<{exc}>"]
                digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
                out[name] = f"{len(rows)} rows {digest}"
            return out
        finally:
            db.close()

    # -- credentials, fetched the way a client would -------------------------------

    def _setup_headers(self) -> dict[str, str]:
        return {"x-forwarded-for": SETUP_ADDRESS}

    def browser_login(self) -> dict[str, str]:
        """A fresh session: its cookie, and the CSRF token bound to it."""
        jar = requests.Session()
        jar.headers.update(self._setup_headers())
        anonymous = jar.get(f"{self.url}/auth/csrf").json()["csrf_token"]
        r = jar.post(
            f"{self.url}/auth/login",
            json={"email": EMAIL, "password": PASSWORD},
            headers={"x-csrf-token": anonymous},
            cookies={"__Host-gatepass-csrf": anonymous},
        )
        assert r.status_code == 200, r.text
        session = r.cookies["__Host-gatepass"]
        csrf = r.cookies["__Host-gatepass-csrf"]
        remember_secret(session)
        remember_secret(csrf)
        remember_secret(anonymous)
        return {"session": session, "csrf": csrf}

    def bearer_login(self) -> str:
        r = requests.post(
            f"{self.url}/auth/token",
            json={"email": EMAIL, "password": PASSWORD},
            headers=self._setup_headers(),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        remember_secret(body["access_token"])
        remember_secret(body["refresh_token"])
        token: str = body["access_token"]
        return token


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    """One ``gatepass serve`` for the module, with an admin account."""
    server = FuzzServer(
        tmp_path_factory.mktemp("schemathesis"),
        GATEPASS_TRUSTED_PROXIES="127.0.0.1",
        GATEPASS_REGISTRATION_LIMIT="0",  # the fuzzer registers thousands of users
    )
    remember_secret(PASSWORD, kind="password")
    server.cli("users", "add", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    server.cli("roles", "grant", EMAIL, "admin")
    try:
        with server:
            yield server
    finally:
        server.http.close()


#: The operations to fuzz are collected from the document in-process (the lazy
#: ``schemathesis.pytest.from_fixture`` loader does not run under pytest 9);
#: ``served_schema`` then holds the server's own ``/openapi.json`` equal to it.
def _document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return openapi.document(create_app(Settings(data_dir=Path(tmp))).routes)


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module", autouse=True)
def served_schema(fuzz_server: FuzzServer) -> None:
    served = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    assert served.raw_schema.pop("servers") == [{"url": fuzz_server.url}]
    assert served.raw_schema == DOCUMENT


AUTH_HEADERS = ("authorization", "x-csrf-token", "cookie")
AUTH_COOKIES = ("__Host-gatepass", "__Host-gatepass-csrf")


def _strip_credentials(case: Case) -> None:
    """Drop what schemathesis made up for the security schemes."""
    if case.headers:
        for name in [k for k in case.headers if k.lower() in AUTH_HEADERS]:
            del case.headers[name]
    if case.cookies:
        for name in [k for k in case.cookies if k in AUTH_COOKIES]:
            del case.cookies[name]


#: Operations whose request carries a token mailed to the user, or an
#: authenticator's signed answer to a challenge of ours.
UNGUESSABLE_OPERATIONS = frozenset(
    {
        "/auth/password/reset",
        "/auth/email/verify",
        "/auth/email/change/confirm",
        "/auth/passkeys/register",
        "/auth/passkeys/login",
    }
)


def _call(
    server: FuzzServer,
    case: Case,
    *,
    credentials: dict[str, str] | None = None,
    excluded: tuple[Any, ...] = (),
) -> Any:
    """Call and validate against the document; a refusal must change no state.

    ``credentials`` are sent as explicit headers, so schemathesis's
    ``ignored_auth`` check also probes the operation without them and with
    made-up ones, and expects those probes refused.  Without credentials
    (the anonymous phase) nothing may change state, whatever the answer.
    """
    server.http.cookies.clear()
    before = server.state()
    if case.operation.path in UNGUESSABLE_OPERATIONS:
        # Their token exists only in a mail, their assertion only in an
        # authenticator: no schema-valid value the fuzzer makes up can be
        # accepted (400 is right).
        excluded = (*excluded, checks.positive_data_acceptance)
    response = case.call_and_validate(
        base_url=server.url,
        session=server.http,
        headers=credentials,
        excluded_checks=list(excluded),
        timeout=30,
    )
    after = server.state()
    assert response.status_code < 500, response.text
    if credentials is None or response.status_code >= 400:
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert not changed, f"{response.status_code} {response.text}: state changed {changed}"
    return response


@schema.parametrize()
@FUZZ
def test_anonymous_and_forged_credentials_change_nothing(
    case: Case, fuzz_server: FuzzServer
) -> None:
    # An undeclared method without a CSRF token meets the CSRF check, which
    # runs before routing and fails closed: 403 where schemathesis expects
    # 405.  With credentials (below) the same check must see 405.
    _call(fuzz_server, case, excluded=(checks.unsupported_method,))


@pytest.fixture(scope="module")
def browser(fuzz_server: FuzzServer) -> dict[str, str]:
    return fuzz_server.browser_login()


@schema.parametrize()
@FUZZ
def test_with_a_session_and_its_csrf_token(
    case: Case, fuzz_server: FuzzServer, browser: dict[str, str]
) -> None:
    server = fuzz_server
    _strip_credentials(case)
    cookie = f"__Host-gatepass={browser['session']}; __Host-gatepass-csrf={browser['csrf']}"
    response = _call(server, case, credentials={"Cookie": cookie, "X-CSRF-Token": browser["csrf"]})
    ended = response.status_code == 204 and case.operation.path in (
        "/auth/logout", "/auth/sessions/{session_id}",
    )  # fmt: skip
    if ended or server.state()["sessions"].startswith("0 rows"):
        browser.update(server.browser_login())


@pytest.fixture(scope="module")
def bearer(fuzz_server: FuzzServer) -> dict[str, str]:
    return {"token": fuzz_server.bearer_login()}


@schema.parametrize()
@FUZZ
def test_with_a_bearer_token(case: Case, fuzz_server: FuzzServer, bearer: dict[str, str]) -> None:
    server = fuzz_server
    _strip_credentials(case)
    response = _call(server, case, credentials={"Authorization": f"Bearer {bearer['token']}"})
    if response.status_code == 204 and case.operation.path == "/auth/logout":
        bearer["token"] = server.bearer_login()  # the token and its family ended
