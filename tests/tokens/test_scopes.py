"""ScopePolicy: which scopes a token may carry, unit by unit.

Every policy is built inside its test (tests/mutation/README.md): an object
built at import would hide the mutants of its constructor.
"""

from __future__ import annotations

import pytest

from gatepass.errors import ConfigurationError, InvalidScope
from gatepass.tokens.scopes import ScopePolicy


def policy() -> ScopePolicy:
    return ScopePolicy.parse("admin=users:read users:write; *=profile; support=users:read")


def test_a_role_gets_its_scopes_and_everyone_gets_the_star_scopes() -> None:
    p = policy()
    assert p.allowed([]) == {"profile"}
    assert p.allowed(["admin"]) == {"profile", "users:read", "users:write"}
    assert p.allowed(["support"]) == {"profile", "users:read"}
    assert p.allowed(["support", "nobody"]) == {"profile", "users:read"}
    assert p.known == {"profile", "users:read", "users:write"}


def test_grant_narrows_to_the_roles_in_request_order_without_repeats() -> None:
    p = policy()
    assert p.grant(["support"], ["users:write", "profile", "users:read", "profile"]) == (
        "profile",
        "users:read",
    )
    assert p.grant(["admin"], ["users:write", "users:read"]) == ("users:write", "users:read")
    assert p.grant([], []) == ()


@pytest.mark.parametrize("requested", [["users:delete"], ["profile", "typo"], ["*"]])
def test_an_unknown_scope_is_refused_even_beside_known_ones(requested: list[str]) -> None:
    with pytest.raises(InvalidScope, match=r"^Unknown scope requested\.$"):
        policy().grant(["admin"], requested)


def test_an_empty_policy_grants_nothing_and_knows_nothing() -> None:
    empties = (ScopePolicy(), ScopePolicy(None), ScopePolicy.parse(""), ScopePolicy.parse(" ; "))
    for empty in empties:
        assert empty.known == frozenset()
        assert empty.allowed(["admin"]) == frozenset()
        with pytest.raises(InvalidScope):
            empty.grant(["admin"], ["profile"])


def test_narrow_drops_what_the_roles_no_longer_allow() -> None:
    p = policy()
    held = ("users:write", "users:read", "profile", "gone")
    assert p.narrow(["admin"], held) == ("users:write", "users:read", "profile")
    assert p.narrow(["support"], held) == ("users:read", "profile")
    assert p.narrow([], held) == ("profile",)


def test_the_cache_answers_the_same_for_any_role_order() -> None:
    p = policy()
    first = p.allowed(["support", "admin"])
    assert p.allowed(["admin", "support"]) == first == {"profile", "users:read", "users:write"}
    # A cached answer for one set of roles never leaks into another.
    assert p.allowed(["support"]) == {"profile", "users:read"}
    # Answered from the cache: the very same set, not one computed again.
    assert p.allowed(["support"]) is p.allowed(["support"])


def test_the_cache_stays_bounded_and_keeps_answering() -> None:
    p = ScopePolicy({"*": ["profile"], "r0": ["extra"]})
    for i in range(4100):
        assert p.allowed([f"r{i}"]) == ({"profile", "extra"} if i == 0 else {"profile"})
    assert len(p._cache) == 4096
    assert p.allowed(["r0"]) == {"profile", "extra"}
    assert p.allowed(["r4099"]) == {"profile"}


def test_parse_merges_repeated_roles_and_ignores_blank_parts() -> None:
    p = ScopePolicy.parse(" admin = a  b ;; admin=c ;  *= ")
    assert p.allowed(["admin"]) == {"a", "b", "c"}
    assert p.allowed([]) == frozenset()
    # The first "=" splits: a scope may hold "=" itself.
    assert ScopePolicy.parse("admin=a=b").allowed(["admin"]) == {"a=b"}


@pytest.mark.parametrize("text", ["admin", "=scope", " = a", "admin a b", "admin=a; b"])
def test_parse_refuses_parts_without_a_role_or_an_equals_sign(text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ScopePolicy.parse(text)
    assert caught.value.detail == (
        "GATEPASS_TOKEN_SCOPES is 'role=scope scope; role=scope', e.g. "
        "'admin=users:read users:write; *=profile'."
    )


@pytest.mark.parametrize(
    "scope", ['bad"scope', "back\\slash", "", "a" * 129, "é", "tab\there", 7, "del\x7f"]
)
def test_invalid_scope_names_are_a_configuration_error(scope: object) -> None:
    with pytest.raises(ConfigurationError, match="Invalid scope name"):
        ScopePolicy({"admin": [scope]})  # type: ignore[list-item]


@pytest.mark.parametrize("scope", ["!", "~", "a" * 128, "users:read", "[x]", "#"])
def test_every_rfc6749_scope_character_is_accepted(scope: str) -> None:
    assert ScopePolicy({"admin": [scope]}).allowed(["admin"]) == {scope}
