"""Access rules for forward auth: which requests need whom.

A rules file (TOML, ``GATEPASS_ACCESS_RULES``) is a list of ``[[rules]]``;
the first rule that matches a request decides, and a request that no rule
matches needs a signed-in user.  Everything here is pure: parsing text into
:class:`AccessRules` (with the line of every mistake), matching, deciding.

Matching, and why it is this strict:

* **host**: an exact host or ``*.domain`` (see :mod:`gatepass.hostnames`);
  omitted, the rule applies to every host.
* **path**: a prefix, matched on the *normalised* path (see
  :mod:`gatepass.forward_auth.original`) at a segment boundary: ``/api``
  covers ``/api`` and ``/api/x``, not ``/apikeys``, so a public ``/api``
  never opens a neighbour by accident.  A prefix ending in ``/`` covers only
  what is below it.
* **methods**: omitted, every method.  When a proxy does not say which method
  the request had, a ``deny`` rule with methods still applies (fail closed)
  and any other rule with methods does not.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from gatepass.errors import ConfigurationError
from gatepass.hostnames import host_matches, validate_pattern

Policy = Literal["public", "signed_in", "mfa", "deny"]
POLICIES: tuple[Policy, ...] = ("public", "signed_in", "mfa", "deny")
#: Authentication methods (RFC 8176 ``amr`` values) that count as a second factor.
SECOND_FACTORS = frozenset({"otp", "hwk", "swk", "mfa"})
_KEYS = frozenset({"host", "path", "methods", "policy", "roles"})
_METHOD_RE = re.compile(r"[A-Z]{1,20}")
_PATH_RE = re.compile(r"/[\x21-\x7e]*")
_ROLE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_RULES = 1000


@dataclass(frozen=True, slots=True)
class Rule:
    policy: Policy
    host: str | None = None
    path: str = "/"
    methods: frozenset[str] | None = None
    roles: frozenset[str] = frozenset()
    #: Where the rule starts in its file (1-based), for messages and logs.
    line: int = 0

    def matches(self, host: str | None, path: str, method: str | None) -> bool:
        if self.host is not None and (host is None or not host_matches(self.host, host)):
            return False
        if not _path_covers(self.path, path):
            return False
        if self.methods is not None:
            if method is None:
                return self.policy == "deny"
            return method in self.methods
        return True


def _path_covers(prefix: str, path: str) -> bool:
    if prefix == "/" or path == prefix:
        return True
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path.startswith(prefix + "/")


class Outcome(Enum):
    ALLOW = "allow"
    #: Not signed in: 401, or a redirect to the login page.
    SIGN_IN = "sign_in"
    #: Signed in, not allowed: 403.
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    rule: Rule | None
    #: Why, in words safe for a log and a 403 body (no user data).
    reason: str = ""


#: What applies when no rule matches.
DEFAULT_RULE = Rule(policy="signed_in", line=0)


@dataclass(frozen=True, slots=True)
class Caller:
    """What a decision needs to know about the caller (None: anonymous)."""

    roles: frozenset[str]
    amr: tuple[str, ...] = ()


def decide(rule: Rule | None, caller: Caller | None) -> Decision:
    rule = rule or DEFAULT_RULE
    if rule.policy == "deny":
        return Decision(Outcome.FORBIDDEN, rule, "denied by rule")
    if rule.policy == "public":
        return Decision(Outcome.ALLOW, rule)
    if caller is None:
        return Decision(Outcome.SIGN_IN, rule)
    if rule.roles and not (rule.roles & caller.roles):
        return Decision(Outcome.FORBIDDEN, rule, "a required role is missing")
    if rule.policy == "mfa" and not SECOND_FACTORS.intersection(caller.amr):
        return Decision(Outcome.FORBIDDEN, rule, "a second factor is required")
    return Decision(Outcome.ALLOW, rule)


@dataclass(frozen=True, slots=True)
class AccessRules:
    rules: tuple[Rule, ...] = ()
    source: str = "<rules>"

    def match(self, host: str | None, path: str, method: str | None) -> Rule | None:
        for rule in self.rules:
            if rule.matches(host, path, method):
                return rule
        return None

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host patterns the rules name (the allowed ``next`` hosts)."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            if rule.host is not None:
                seen.setdefault(rule.host, None)
        return tuple(seen)


def parse_rules(text: str, source: str = "<rules>") -> AccessRules:
    """Parse and validate a rules file; ConfigurationError names the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise ConfigurationError(f"{source}: invalid TOML: {exc}") from None
    lines = _rule_lines(text)
    unknown = sorted(set(data) - {"rules"})
    if unknown:
        raise ConfigurationError(
            f"{source}: unknown top-level key {unknown[0][:40]!r} (expected [[rules]] tables)"
        )
    raw = data.get("rules", [])
    if not isinstance(raw, list):
        raise ConfigurationError(f"{source}: 'rules' must be an array of [[rules]] tables")
    if len(raw) > MAX_RULES:
        raise ConfigurationError(f"{source}: more than {MAX_RULES} rules")
    rules = []
    for index, entry in enumerate(raw):
        line = lines[index] if index < len(lines) else 0
        where = f"{source}, line {line}" if line else f"{source}, rule {index + 1}"
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: each rule must be a table")
        try:
            rules.append(_rule(entry, line))
        except ValueError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return AccessRules(tuple(rules), source)


def load_rules(path: str | Path) -> AccessRules:
    """Read and parse a rules file; an unreadable file is a ConfigurationError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigurationError(f"Cannot read the access rules file {str(path)!r}: {reason}.") \
            from None  # fmt: skip
    return parse_rules(text, str(path))


_HEADER_RE = re.compile(r"^[ \t]*\[\[[ \t]*rules[ \t]*\]\]", re.MULTILINE)


def _rule_lines(text: str) -> list[int]:
    """The line of each ``[[rules]]`` header, in order (the n-th is rule n).

    tomllib reports positions only for syntax errors; for a rule that parses
    but makes no sense, this finds its header.  Inline ``rules = [{...}]``
    arrays have no headers: their rules are named by number instead.
    """
    return [text.count("\n", 0, m.start()) + 1 for m in _HEADER_RE.finditer(text)]


def _rule(entry: dict[str, Any], line: int) -> Rule:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0][:40]!r} (allowed: {', '.join(sorted(_KEYS))})")
    policy = entry.get("policy")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
    host = entry.get("host")
    if host is not None:
        problem = validate_pattern(host) if isinstance(host, str) else "host must be a string"
        if problem:
            raise ValueError(problem)
        host = host.lower()
    path = entry.get("path", "/")
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path) or len(path) > 1024:
        raise ValueError("path must be a prefix starting with '/', printable ASCII, no spaces")
    if any(seg in (".", "..") for seg in path.split("/")) or "//" in path or "%" in path:
        raise ValueError("path must be normalised (no '.', '..', '//' or percent-encoding)")
    methods = entry.get("methods")
    if methods is not None:
        methods = frozenset(_strings(methods, "methods"))
        if not methods or not all(_METHOD_RE.fullmatch(m) for m in methods):
            raise ValueError("methods must be a non-empty list of upper-case HTTP methods")
    roles = frozenset(_strings(entry.get("roles", []), "roles"))
    if not all(_ROLE_RE.fullmatch(r) for r in roles):
        raise ValueError("roles must be role names (letters, digits, '_.:-')")
    if roles and policy in ("public", "deny"):
        raise ValueError(f"roles make no sense with policy {policy!r}")
    return Rule(policy=policy, host=host, path=path, methods=methods, roles=roles, line=line)


def _strings(value: object, name: str) -> Iterable[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return value
