"""Access rules: parsing with line numbers, matching, deciding, reloading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gatepass.errors import ConfigurationError
from gatepass.forward_auth import AccessRules, Caller, Outcome, decide, parse_rules
from gatepass.forward_auth.source import RulesSource

RULES = """\
# the example from SPEC, and a few more
[[rules]]
host = "app.example.test"
path = "/public/"
methods = ["GET", "HEAD"]
policy = "public"

[[rules]]
host = "app.example.test"
path = "/admin"
policy = "signed_in"
roles = ["admin"]

[[rules]]
host = "*.example.test"
path = "/secure"
policy = "mfa"

[[rules]]
host = "app.example.test"
path = "/api"
methods = ["DELETE"]
policy = "deny"

[[rules]]
host = "closed.example.test"
policy = "deny"
"""


@pytest.fixture
def rules() -> AccessRules:
    return parse_rules(RULES, "rules.toml")


ADA = Caller(frozenset())
ADMIN = Caller(frozenset({"admin"}))


@pytest.mark.parametrize(
    ("host", "path", "method", "line"),
    [
        ("app.example.test", "/public/x", "GET", 2),
        ("app.example.test", "/public/", "HEAD", 2),
        ("app.example.test", "/public/x", "POST", None),  # method not listed
        ("app.example.test", "/public", "GET", None),  # a '/'-ended prefix covers below it only
        ("app.example.test", "/admin", "GET", 8),
        ("app.example.test", "/admin/users", "POST", 8),
        ("app.example.test", "/administrator", "GET", None),  # segment boundary
        ("other.example.test", "/admin", "GET", None),
        ("x.example.test", "/secure/a", "GET", 14),
        ("a.b.example.test", "/secure", "GET", 14),
        ("example.test", "/secure", "GET", None),  # '*.' is subdomains only
        ("evilexample.test", "/secure", "GET", None),
        ("app.example.test", "/api/items", "DELETE", 19),
        ("app.example.test", "/api/items", "GET", None),
        ("app.example.test", "/api/items", None, 19),  # unknown method: deny applies
        ("app.example.test", "/public/x", None, None),  # ...and public does not
        ("closed.example.test", "/anything", "GET", 25),
    ],
)
def test_first_match_wins(
    rules: AccessRules, host: str, path: str, method: str | None, line: int | None
) -> None:
    rule = rules.match(host, path, method)
    assert (rule.line if rule else None) == line


def test_decisions(rules: AccessRules) -> None:
    public = rules.match("app.example.test", "/public/x", "GET")
    admin = rules.match("app.example.test", "/admin", "GET")
    deny = rules.match("closed.example.test", "/", "GET")
    assert decide(public, None).outcome is Outcome.ALLOW
    assert decide(None, None).outcome is Outcome.SIGN_IN  # no rule: a user is needed
    assert decide(None, ADA).outcome is Outcome.ALLOW
    assert decide(admin, None).outcome is Outcome.SIGN_IN
    assert decide(admin, ADA).outcome is Outcome.FORBIDDEN
    assert decide(admin, ADMIN).outcome is Outcome.ALLOW
    assert decide(deny, ADMIN).outcome is Outcome.FORBIDDEN
    assert decide(deny, None).outcome is Outcome.FORBIDDEN


@pytest.mark.parametrize(
    ("amr", "allowed"),
    [((), False), (("pwd",), False), (("pwd", "otp"), True), (("hwk",), True),
     (("swk", "user"), True), (("mfa",), True), (("pwd", "sms-ish"), False)],
)  # fmt: skip
def test_mfa_needs_a_second_factor(
    rules: AccessRules, amr: tuple[str, ...], allowed: bool
) -> None:
    rule = rules.match("x.example.test", "/secure", "GET")
    outcome = decide(rule, Caller(frozenset({"admin"}), amr)).outcome
    assert outcome is (Outcome.ALLOW if allowed else Outcome.FORBIDDEN)


def test_hosts_named_by_the_rules(rules: AccessRules) -> None:
    assert rules.hosts == ("app.example.test", "*.example.test", "closed.example.test")


BAD = [
    ('[[rules]]\npolicy = "public"\npath = "/a"\n[[rules]\n', 4, "invalid TOML"),
    ('[[rules]]\npolicy = "public"\n\n[[rules]]\npolicy = "open"\n', 4, "policy must be"),
    ('\n\n[[rules]]\npolicy = "public"\nhots = "a.test"\n', 3, "unknown key 'hots'"),
    ('[[rules]]\npolicy = "public"\n[[rules]]\npolicy="deny"\nhost = "https://a.test"\n', 3,
     "not a host name"),
    ('[[rules]]\npolicy = "public"\nhost = "*.test"\n', 1, "top-level domain"),
    ('[[rules]]\npolicy = "public"\npath = "public"\n', 1, "starting with '/'"),
    ('[[rules]]\npolicy = "public"\npath = "/a/../b"\n', 1, "normalised"),
    ('[[rules]]\npolicy = "public"\npath = "/a%2fb"\n', 1, "normalised"),
    ('[[rules]]\npolicy = "deny"\nmethods = ["get"]\n', 1, "upper-case"),
    ('[[rules]]\npolicy = "deny"\nmethods = []\n', 1, "non-empty"),
    ('[[rules]]\npolicy = "public"\nroles = ["admin"]\n', 1, "roles make no sense"),
    ('[[rules]]\npolicy = "signed_in"\nroles = "admin"\n', 1, "list of strings"),
    ('[[rules]]\npolicy = "signed_in"\nroles = ["ad min"]\n', 1, "role names"),
    ('[rules]\npolicy = "public"\n', None, "array of [[rules]]"),
    ('[[rule]]\npolicy = "public"\n', None, "unknown top-level key 'rule'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_mistakes_are_named_with_their_line(text: str, line: int | None, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules(text, "rules.toml")
    detail = caught.value.detail
    assert message in detail
    assert detail.startswith("rules.toml")
    if line is not None:
        assert f"line {line}" in detail


def test_an_empty_file_means_no_rules() -> None:
    assert parse_rules("", "x").rules == ()


def test_reload_keeps_the_old_rules_when_the_new_file_is_bad(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\nhost = "a.example.test"\npolicy = "public"\n')
    source = RulesSource(path)
    assert source.current.match("a.example.test", "/", "GET") is not None

    path.write_text('[[rules]]\nhost = "a.example.test"\npolicy = "deny"\n')
    assert source.reload() is True
    assert source.current.rules[0].policy == "deny"

    path.write_text('[[rules]]\nhost = "a.example.test"\npolicy = "allow-all"\n')
    with caplog.at_level(logging.ERROR, logger="gatepass.forward_auth"):
        assert source.reload() is False
    assert source.current.rules[0].policy == "deny"  # unchanged
    assert "line 1" in caplog.text and "policy must be" in caplog.text

    path.unlink()
    assert source.reload() is False
    assert source.current.rules[0].policy == "deny"


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Cannot read the access rules file"):
        RulesSource(tmp_path / "missing.toml")
