"""The email normalisation rule: look-alikes fold together, junk is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatepass.errors import InvalidRequest
from gatepass.users.emails import normalize_email


def fullwidth(ascii_text: str) -> str:
    """The full-width forms (U+FF01 to U+FF5E) of printable ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in ascii_text)


# Every spelling here must name the same account as "admin@example.com".
ADMIN_LOOKALIKES = [
    "admin@example.com",
    "Admin@Example.COM",
    "ADMIN@EXAMPLE.COM",
    "  admin@example.com\t\n",
    "\u3000admin@example.com\u00a0",  # ideographic and no-break spaces
    "\uff21\uff24\uff2d\uff29\uff2e@example.com",  # full-width ADMIN
    fullwidth("admin@example.com"),  # every character full-width, @ and . included
    fullwidth("ADMIN") + "@Example.com",
    "admin\u200b@example.com",  # zero-width space
    "ad\u200cmin@example.com",  # zero-width non-joiner
    "ad\u200dmin@exa\u200dmple.com",  # zero-width joiner
    "\u2060admin@example.com",  # word joiner
    "\ufeffadmin@example.com",  # byte-order mark
    "ad\u00admin@example.com",  # soft hyphen
    "admin@example.com\u200b ",  # invisible after the trailing space
    "\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427@example.com",  # mathematical bold
    "\u24d0dmin@example.com",  # circled a
]

# Pairs that normalise to each other beyond ASCII case.
EQUIVALENT = [
    ("Stra\u00dfe@example.de", "strasse@example.de"),  # casefold folds sharp s
    ("caf\u00e9@example.com", "cafe\u0301@example.com"),  # composed vs combining accent
    ("\u2126mega@example.com", "\u03c9mega@example.com"),  # ohm sign vs omega
    ("\ufb01le@example.com", "file@example.com"),  # fi ligature
    ("user@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0ecom", "user@example.com"),
]

# Different accounts: the rule must not fold these together.
DISTINCT = [
    ("admin@example.com", "\u0430dmin@example.com"),  # Cyrillic a is not folded
    ("john.doe@example.com", "johndoe@example.com"),
    ("john+tag@example.com", "john@example.com"),
]

INVALID = [
    "",
    "   ",
    "\u200b",
    "admin",
    "admin@",
    "@example.com",
    "admin@@example.com",
    "ad@min@example.com",
    "admin\uff20\uff20example.com",  # two full-width @ become two @
    "admin@localhost",
    "admin@example.",
    "admin@.example.com",
    "admin@example..com",
    "ad min@example.com",
    "admin@exa mple.com",
    "admin\u00a0x@example.com",  # no-break space inside becomes a space
    "admin\t@example.com",
    "admin\x00@example.com",
    "admin\x7f@example.com",
    "admin\u2028@example.com",  # line separator
    "admin\ue000@example.com",  # private use
    "admin\ud800@example.com",  # lone surrogate
    "a" * 65 + "@example.com",
    "a@" + "b" * 250 + ".com",
    "a" * 2000 + "@example.com",
]


@pytest.mark.parametrize("raw", ADMIN_LOOKALIKES)
def test_lookalikes_fold_to_one_address(raw: str) -> None:
    assert normalize_email(raw) == "admin@example.com"


@pytest.mark.parametrize(("left", "right"), EQUIVALENT)
def test_compatibility_and_case_equivalents_fold_together(left: str, right: str) -> None:
    assert normalize_email(left) == normalize_email(right)


@pytest.mark.parametrize(("left", "right"), DISTINCT)
def test_distinct_addresses_stay_distinct(left: str, right: str) -> None:
    assert normalize_email(left) != normalize_email(right)


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_addresses_are_refused_without_quoting_them(raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        normalize_email(raw)
    assert str(info.value) == "Invalid email address."


def test_limits_are_inclusive() -> None:
    local = "a" * 64
    domain = "b" * (254 - 64 - 1 - 4) + ".com"
    email = f"{local}@{domain}"
    assert len(email) == 254
    assert normalize_email(email) == email


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        normalize_email(b"admin@example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        # Casefolding the dotted capital I adds a combining dot above, which
        # NFKC then reorders after a combining mark below: without the second
        # NFKC, normalising the result again would change it.
        "\u0130\u0316@example.com",
        *ADMIN_LOOKALIKES,
        *(left for left, _ in EQUIVALENT),
    ],
)
def test_result_is_stable(raw: str) -> None:
    once = normalize_email(raw)
    assert normalize_email(once) == once


@given(st.text(max_size=40), st.text(max_size=40))
def test_normalising_twice_changes_nothing(local: str, domain: str) -> None:
    try:
        once = normalize_email(f"{local}@{domain}.com")
    except InvalidRequest:
        return
    assert normalize_email(once) == once


def test_input_limit_is_inclusive() -> None:
    # Invisible characters are removed after the length check: 1,024 raw
    # characters are read, 1,025 are refused unread.
    raw = "alice@example.com" + "\u200b" * (1024 - 17)
    assert len(raw) == 1024
    assert normalize_email(raw) == "alice@example.com"
    with pytest.raises(InvalidRequest):
        normalize_email(raw + "\u200b")
