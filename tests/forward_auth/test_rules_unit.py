"""Access rules, unit by unit: exact messages, decisions' rule and reason,
the limits of every field.  (test_rules.py has the file-level behaviour.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from gatepass.errors import ConfigurationError
from gatepass.forward_auth import Caller, Outcome, decide, parse_rules
from gatepass.forward_auth.rules import DEFAULT_RULE, MAX_RULES, Rule, load_rules

ALLOWED_KEYS = "host, methods, path, policy, roles"


def refused(text: str, source: str = "r.toml") -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules(text, source)
    detail: str = caught.value.detail
    return detail


def one(body: str) -> str:
    return refused(f"[[rules]]\n{body}\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('policy = "open"', "r.toml, line 1: policy must be one of public, signed_in, mfa, deny"),
        ('policy = "public"\nzzz = 1',
         f"r.toml, line 1: unknown key 'zzz' (allowed: {ALLOWED_KEYS})"),
        ('policy = "public"\n' + "k" * 50 + " = 1",
         f"r.toml, line 1: unknown key '{'k' * 40}' (allowed: {ALLOWED_KEYS})"),
        ('policy = "public"\nhost = 7', "r.toml, line 1: host must be a string"),
        ('policy = "public"\npath = 7',
         "r.toml, line 1: path must be a prefix starting with '/', printable ASCII, no spaces"),
        ('policy = "public"\npath = "/a b"',
         "r.toml, line 1: path must be a prefix starting with '/', printable ASCII, no spaces"),
        ('policy = "public"\npath = "/a/./b"',
         "r.toml, line 1: path must be normalised (no '.', '..', '//' or percent-encoding)"),
        ('policy = "public"\npath = "/a//b"',
         "r.toml, line 1: path must be normalised (no '.', '..', '//' or percent-encoding)"),
        ('policy = "public"\npath = "/a/.."',
         "r.toml, line 1: path must be normalised (no '.', '..', '//' or percent-encoding)"),
        ('policy = "deny"\nmethods = "GET"', "r.toml, line 1: methods must be a list of strings"),
        ('policy = "deny"\nmethods = [1]', "r.toml, line 1: methods must be a list of strings"),
        ('policy = "deny"\nmethods = ["GE T"]',
         "r.toml, line 1: methods must be a non-empty list of upper-case HTTP methods"),
        ('policy = "signed_in"\nroles = [1]', "r.toml, line 1: roles must be a list of strings"),
        ('policy = "signed_in"\nroles = ["a/b"]',
         "r.toml, line 1: roles must be role names (letters, digits, '_.:-')"),
        ('policy = "deny"\nroles = ["admin"]',
         "r.toml, line 1: roles make no sense with policy 'deny'"),
        ('policy = "public"\nroles = ["admin"]',
         "r.toml, line 1: roles make no sense with policy 'public'"),
    ],
)  # fmt: skip
def test_exact_messages(body: str, message: str) -> None:
    assert one(body) == message


def test_the_path_limit_is_1024_characters() -> None:
    ok = "/" + "a" * 1023
    assert parse_rules(f'[[rules]]\npolicy = "public"\npath = "{ok}"\n').rules[0].path == ok
    assert "path must be a prefix" in one(f'policy = "public"\npath = "{ok}a"')


def test_roles_and_methods_are_kept() -> None:
    [rule] = parse_rules(
        '[[rules]]\npolicy = "mfa"\nhost = "App.Example.test"\n'
        'methods = ["GET", "POST"]\nroles = ["a.b:c-d_e"]\n'
    ).rules
    assert rule == Rule(
        policy="mfa", host="app.example.test", path="/",
        methods=frozenset({"GET", "POST"}), roles=frozenset({"a.b:c-d_e"}), line=1,
    )  # fmt: skip


def test_mfa_and_signed_in_take_roles() -> None:
    for policy in ("mfa", "signed_in"):
        [rule] = parse_rules(f'[[rules]]\npolicy = "{policy}"\nroles = ["admin"]\n').rules
        assert rule.roles == {"admin"}


def test_a_rule_without_a_header_line_is_named_by_number() -> None:
    text = 'rules = [{policy = "public"}, {policy = "nope"}]\n'
    assert refused(text) == "r.toml, rule 2: policy must be one of public, signed_in, mfa, deny"
    assert refused("rules = [1]\n") == "r.toml, rule 1: each rule must be a table"


def test_header_lines_are_counted_from_one() -> None:
    text = '[[rules]]\npolicy = "public"\n\n  [[ rules ]]\npolicy = "nope"\n'
    assert refused(text).startswith("r.toml, line 4: ")
    assert refused("\n" + text).startswith("r.toml, line 5: ")


def test_top_level_mistakes() -> None:
    assert refused("x = 1\n") == ("r.toml: unknown top-level key 'x' (expected [[rules]] tables)")
    long_key = "k" * 50
    assert refused(f"{long_key} = 1\n") == (
        f"r.toml: unknown top-level key '{'k' * 40}' (expected [[rules]] tables)"
    )
    assert refused("rules = 1\n") == "r.toml: 'rules' must be an array of [[rules]] tables"
    assert refused("rules = [\n").startswith("r.toml: invalid TOML: ")


def test_the_source_defaults_and_is_kept() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules("x = 1\n")
    assert caught.value.detail.startswith("<rules>: unknown top-level key")
    assert parse_rules("").source == "<rules>"
    assert parse_rules("", "file.toml").source == "file.toml"


def test_at_most_max_rules() -> None:
    allowed = '[[rules]]\npolicy = "public"\n' * MAX_RULES
    assert len(parse_rules(allowed).rules) == MAX_RULES
    too_many = allowed + '[[rules]]\npolicy = "public"\n'
    assert refused(too_many) == f"r.toml: more than {MAX_RULES} rules"


def test_load_rules_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\npolicy = "public"\npath = "/é"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_rules(path)
    assert caught.value.detail.startswith(f"{path}, line 1: path must be")
    path.write_text('[[rules]]\npolicy = "public"\n', encoding="utf-8")
    assert load_rules(path).source == str(path)
    assert load_rules(str(path)).rules[0].policy == "public"


def test_an_unreadable_rules_file_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigurationError) as caught:
        load_rules(missing)
    assert caught.value.detail == (
        f"Cannot read the access rules file {str(missing)!r}: No such file or directory."
    )
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[[rules]]\npolicy = "public"\n# caf\xe9\n')
    with pytest.raises(ConfigurationError) as caught:
        load_rules(latin)
    assert caught.value.detail == (
        f"Cannot read the access rules file {str(latin)!r}: UnicodeDecodeError."
    )


def test_decisions_name_their_rule_and_reason() -> None:
    deny = Rule(policy="deny", line=3)
    public = Rule(policy="public", line=4)
    admin = Rule(policy="signed_in", roles=frozenset({"admin"}), line=5)
    mfa = Rule(policy="mfa", line=6)
    user = Caller(frozenset({"user"}), ("pwd",))
    assert decide(deny, user) == decide(deny, None)
    assert (decide(deny, user).outcome, decide(deny, user).rule, decide(deny, user).reason) == (
        Outcome.FORBIDDEN, deny, "denied by rule"
    )  # fmt: skip
    assert decide(public, None).rule is public and decide(public, None).reason == ""
    assert decide(admin, None).rule is admin
    got = decide(admin, user)
    assert (got.outcome, got.rule, got.reason) == (
        Outcome.FORBIDDEN, admin, "a required role is missing"
    )  # fmt: skip
    got = decide(mfa, user)
    assert (got.outcome, got.rule, got.reason) == (
        Outcome.FORBIDDEN, mfa, "a second factor is required"
    )  # fmt: skip
    got = decide(mfa, Caller(frozenset(), ("pwd", "otp")))
    assert (got.outcome, got.rule, got.reason) == (Outcome.ALLOW, mfa, "")
    got = decide(None, user)
    assert (got.outcome, got.rule) == (Outcome.ALLOW, DEFAULT_RULE)


def test_roles_need_one_in_common() -> None:
    rule = Rule(policy="signed_in", roles=frozenset({"admin", "ops"}))
    assert decide(rule, Caller(frozenset({"ops", "x"}))).outcome is Outcome.ALLOW
    assert decide(rule, Caller(frozenset({"x"}))).outcome is Outcome.FORBIDDEN
    assert decide(rule, Caller(frozenset())).outcome is Outcome.FORBIDDEN


@pytest.mark.parametrize(
    ("prefix", "path", "covered"),
    [
        ("/", "/", True), ("/", "/anything/below", True),
        ("/api", "/api", True), ("/api", "/api/", True), ("/api", "/api/x", True),
        ("/api", "/apikeys", False), ("/api", "/", False), ("/api", "/ap", False),
        ("/api/", "/api/", True), ("/api/", "/api/x", True), ("/api/", "/api", False),
        ("/api/", "/apix", False),
    ],
)  # fmt: skip
def test_path_prefixes_cover_at_segment_boundaries(prefix: str, path: str, covered: bool) -> None:
    assert Rule(policy="public", path=prefix).matches(None, path, "GET") is covered


def test_a_host_rule_needs_a_host() -> None:
    rule = Rule(policy="public", host="a.example.test")
    assert rule.matches("a.example.test", "/", None)
    assert not rule.matches(None, "/", "GET")
    assert not rule.matches("b.example.test", "/", "GET")
    assert Rule(policy="public").matches(None, "/", None)


def test_methods_and_an_unknown_method() -> None:
    for policy in ("public", "signed_in", "mfa"):
        rule = Rule(policy=policy, methods=frozenset({"GET"}))  # type: ignore[arg-type]
        assert rule.matches(None, "/", "GET")
        assert not rule.matches(None, "/", "POST")
        assert not rule.matches(None, "/", None)
    deny = Rule(policy="deny", methods=frozenset({"DELETE"}))
    assert deny.matches(None, "/", None) and deny.matches(None, "/", "DELETE")
    assert not deny.matches(None, "/", "GET")


def test_hosts_are_listed_once_in_order() -> None:
    rules = parse_rules(
        '[[rules]]\npolicy = "public"\nhost = "b.test"\n'
        '[[rules]]\npolicy = "public"\n'
        '[[rules]]\npolicy = "deny"\nhost = "a.test"\n'
        '[[rules]]\npolicy = "deny"\nhost = "B.test"\n'
    )
    assert rules.hosts == ("b.test", "a.test")
    assert rules.match("c.test", "/", "GET") is rules.rules[1]
    assert parse_rules("").match("a.test", "/", "GET") is None
