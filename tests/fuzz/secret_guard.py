"""Secrets stay secret: a pytest plugin that watches the whole test session.

Issue 7 item 6: no password, session id, access or refresh token, or CSRF
token may ever appear in a log line or an error message.  For the whole
session this plugin

* installs a handler on the root logger (and on every logger that does not
  propagate) with the root level opened to every level, and keeps each
  record's text, attributed to the test that was running;
* records the message (and ``reason``) of every :class:`GatepassError` built
  while the server handles a request, and the exception of a failed test;
* learns the secrets as the tests produce them: :func:`remember_secret` for
  explicit calls, plus every request and response that goes through httpx
  (``TestClient`` included): passwords in JSON or form bodies, Bearer tokens,
  our cookies' values, and ``access_token``, ``refresh_token`` and
  ``csrf_token`` in JSON bodies and HTML forms;
* after each test, checks that test's records against every secret known so
  far and against the shapes of secrets (a 43-character base64url token, a
  JWT ``eyJ….eyJ….…``, a refresh token ``<22>.<43>``), whoever minted them;
* at the end of the session, greps the subprocess servers' logs (every
  ``*.log`` under the session's temporary directory) for every secret.

A finding fails loudly: the test's teardown errors (or the session exits
non-zero) naming the test, the logger and the kind of secret, and never
printing the secret itself.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

# -- what a secret looks like ---------------------------------------------------

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")
_REFRESH = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
#: Session ids and CSRF tokens: 32 bytes, unpadded base64url.
_TOKEN43 = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_.-])")
_RUN = re.compile(r"[A-Za-z0-9_.~+/-]{16,}")
SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a JWT", _JWT),
    ("a refresh token", _REFRESH),
    ("a 43-character base64url token (session id or CSRF token)", _TOKEN43),
)

_COOKIE_NAMES = re.compile(r"(?:__Host-|__Secure-)?gatepass[\w-]*", re.I)
_SECRET_FIELDS = (
    "access_token", "refresh_token", "csrf_token", "token", "session_id",
    # Second factors: the TOTP secret (base32) and the mfa_token.
    "secret", "mfa_token",
)  # fmt: skip
_PASSWORD_FIELDS = ("password", "new_password", "current_password")
_HTML_CSRF = re.compile(r"name=[\"']?csrf_token[\"']?\s+value=[\"']?([A-Za-z0-9_-]{16,})")


@dataclass(frozen=True)
class Finding:
    test: str
    source: str
    kind: str

    def __str__(self) -> str:
        return f"{self.test}: {self.kind} in {self.source}"


@dataclass
class SecretRegistry:
    """Secrets seen so far.  Tokens match as whole runs; passwords as substrings."""

    tokens: set[str] = field(default_factory=set)
    passwords: set[str] = field(default_factory=set)

    def remember(self, value: object, *, kind: str = "token") -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if kind == "password":
            # Too short or too repetitive to be told from ordinary text.
            if len(value) >= 10 and len(set(value)) >= 5:
                self.passwords.add(value)
        elif len(value) >= 16 and len(set(value)) >= 8:
            self.tokens.add(value)

    def scan(self, text: str) -> list[str]:
        """Kinds of secrets found in ``text`` (empty when clean)."""
        kinds: list[str] = []
        if self.tokens:
            for run in _RUN.findall(text):
                if _contains_token(run, self.tokens):
                    kinds.append("a remembered token")
                    break
        if any(p in text for p in self.passwords):
            kinds.append("a remembered password")
        for kind, pattern in SHAPES:
            if pattern.search(text):
                kinds.append(kind)
        return kinds


def _contains_token(run: str, tokens: set[str]) -> bool:
    if run in tokens:
        return True
    # A token inside a longer run: JWTs and refresh tokens are dotted, so
    # try every dotted sub-run; other tokens meet a non-run character.
    parts = run.split(".")
    for i in range(len(parts)):
        for j in range(i + 1, min(len(parts), i + 3) + 1):
            if ".".join(parts[i:j]) in tokens:
                return True
    return any(t in run for t in tokens if len(t) <= len(run))


# -- harvesting secrets from the tests' own traffic ---------------------------


def harvest_request(registry: SecretRegistry, request: httpx.Request) -> None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        registry.remember(auth[7:])
    for name, value in _cookie_pairs(request.headers.get("cookie", "")):
        if _COOKIE_NAMES.fullmatch(name):
            registry.remember(value)
    csrf = request.headers.get("x-csrf-token")
    if csrf:
        registry.remember(csrf)
    try:
        body = request.content
    except httpx.RequestNotRead:
        return
    _harvest_body(registry, body, request.headers.get("content-type", ""))


def harvest_response(registry: SecretRegistry, response: httpx.Response) -> None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if _COOKIE_NAMES.fullmatch(name.strip()):
            registry.remember(rest.split(";", 1)[0])
    try:
        body = response.content
    except httpx.ResponseNotRead:
        return
    kind = response.headers.get("content-type", "")
    if "html" in kind:
        for token in _HTML_CSRF.findall(body.decode("utf-8", "replace")):
            registry.remember(token)
    else:
        _harvest_body(registry, body, kind)


def _harvest_body(registry: SecretRegistry, body: bytes, content_type: str) -> None:
    if not body or len(body) > 256 * 1024:
        return
    fields: dict[str, Any] = {}
    if "json" in content_type:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if isinstance(data, dict):
            fields = data
    elif "x-www-form-urlencoded" in content_type:
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return
    for name in _PASSWORD_FIELDS:
        registry.remember(fields.get(name), kind="password")
    for name in _SECRET_FIELDS:
        registry.remember(fields.get(name))
    codes = fields.get("recovery_codes")
    if isinstance(codes, list):
        for code in codes:
            registry.remember(code)


def _cookie_pairs(header: str) -> Iterator[tuple[str, str]]:
    for chunk in header.split(";"):
        name, sep, value = chunk.strip().partition("=")
        if sep:
            yield name.strip(), value.strip().strip('"')


# -- capturing what could leak ----------------------------------------------------


#: The tests' own HTTP client tracing the wire at DEBUG: raw request and
#: response headers, cookies included, by design.  That is the client's
#: transcript of traffic, not something the server logged.  Likewise
#: aiosmtpd (logger ``mail.log``), the tests' receiving SMTP server: its
#: DEBUG transcript of DATA is the user's mailbox, where links belong.
CLIENT_WIRE_LOGGERS = ("httpcore", "hpack", "mail")


class _Capture(logging.Handler):
    def __init__(self, guard: SecretGuard) -> None:
        super().__init__(level=1)
        self.guard = guard

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in CLIENT_WIRE_LOGGERS:
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is not ours to judge
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text}\n{type(exc).__name__}: {exc}"
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        self.guard.capture(f"logger {record.name!r} ({record.levelname})", text)


class SecretGuard:
    def __init__(self) -> None:
        self.registry = SecretRegistry()
        self.findings: list[Finding] = []
        self.current = "<session start>"
        self._buffer: list[tuple[str, str | BaseException]] = []
        self._lock = threading.Lock()
        self._handler = _Capture(self)
        self._undo: list[Callable[[], None]] = []

    # records -------------------------------------------------------------------

    def capture(self, source: str, text: str | BaseException) -> None:
        """``text`` may be an exception, rendered at check time (its ``reason``
        is set after the base ``__init__`` ran)."""
        with self._lock:
            self._buffer.append((source, text))

    def check_buffer(self) -> list[Finding]:
        """Scan what was captured since the last check; returns the new findings."""
        with self._lock:
            buffer, self._buffer = self._buffer, []
        found: dict[tuple[str, str], Finding] = {}
        for source, item in buffer:
            text = item if isinstance(item, str) else _render(item)
            for kind in self.registry.scan(text):
                found.setdefault((source, kind), Finding(self.current, source, kind))
        new = list(found.values())
        self.findings.extend(new)
        return new

    def check_files(self, paths: Iterable[Path], root: Path) -> list[Finding]:
        new = []
        for path in paths:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for kind in self.registry.scan(text):
                new.append(Finding(str(path.relative_to(root)), "a server log file", kind))
        self.findings.extend(new)
        return new

    # installation ----------------------------------------------------------------

    def install(self) -> None:
        root = logging.getLogger()
        previous_level = root.level
        root.addHandler(self._handler)
        root.setLevel(1)  # every level, DEBUG included
        self._undo.append(lambda: root.removeHandler(self._handler))
        self._undo.append(lambda: root.setLevel(previous_level))
        self.cover_non_propagating_loggers()
        self._patch_httpx()
        self._patch_errors()

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def cover_non_propagating_loggers(self) -> None:
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if (
                isinstance(logger, logging.Logger)
                and not logger.propagate
                and self._handler not in logger.handlers
            ):
                logger.addHandler(self._handler)
                self._undo.append(lambda lg=logger: lg.removeHandler(self._handler))  # type: ignore[misc]

    def _patch_httpx(self) -> None:
        registry = self.registry
        original_send = httpx.Client.send
        original_async_send = httpx.AsyncClient.send

        def send(client: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
            harvest_request(registry, request)
            response = original_send(client, request, **kw)
            harvest_response(registry, response)
            return response

        async def async_send(
            client: httpx.AsyncClient, request: httpx.Request, **kw: Any
        ) -> httpx.Response:
            harvest_request(registry, request)
            response = await original_async_send(client, request, **kw)
            harvest_response(registry, response)
            return response

        httpx.Client.send = send  # type: ignore[method-assign]
        httpx.AsyncClient.send = async_send  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(httpx.Client, "send", original_send))
        self._undo.append(lambda: setattr(httpx.AsyncClient, "send", original_async_send))

    def _patch_errors(self) -> None:
        from gatepass.errors import GatepassError

        original_init = GatepassError.__init__
        guard = self

        def init(self: GatepassError, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            guard.capture(f"the message of a {type(self).__name__}", self)

        GatepassError.__init__ = init  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(GatepassError, "__init__", original_init))


def _render(exc: BaseException) -> str:
    parts = [type(exc).__name__, str(exc), *map(str, exc.args)]
    for name in ("detail", "reason", "store"):
        value = getattr(exc, name, None)
        if value:
            parts.append(str(value))
    return " ".join(parts)


_SRC = str(Path(__file__).resolve().parents[2] / "src" / "gatepass")


def _raised_through_gatepass(excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    """Whether the exception passed through gatepass's code (not a test's assert)."""
    return any(str(entry.path).startswith(_SRC) for entry in excinfo.traceback)


GUARD = SecretGuard()


def remember_secret(value: str | None, *, kind: str = "token") -> None:
    """Tell the guard about a secret a test produced (``kind="password"`` for passwords)."""
    GUARD.registry.remember(value, kind=kind)


def _report(findings: list[Finding]) -> str:
    lines = "\n".join(f"  - {f}" for f in findings)
    return (
        "SECRET LEAKED: a secret (value withheld) appeared where it must never be:\n"
        f"{lines}"
    )


# -- pytest hooks ------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    GUARD.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    GUARD.check_buffer()  # whatever came between tests belongs to the previous one
    GUARD.current = item.nodeid
    GUARD.cover_non_propagating_loggers()
    try:
        return (yield)
    finally:
        GUARD.current = f"after {item.nodeid}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and _raised_through_gatepass(call.excinfo):
        exc = call.excinfo.value
        GUARD.capture(f"a {type(exc).__name__} raised through gatepass", exc)
    if call.when == "teardown":
        found = GUARD.check_buffer()
        if found and report.passed:
            report.outcome = "failed"
            report.longrepr = _report(found)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    GUARD.current = "<session end>"
    GUARD.check_buffer()
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and getattr(factory, "_basetemp", None) is not None:
        root = factory.getbasetemp()
        GUARD.check_files(sorted(root.rglob("*.log")), root)
    GUARD.uninstall()
    if GUARD.findings:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "secrets in logs or error messages", red=True, bold=True)
            reporter.write_line(_report(GUARD.findings))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
