"""The one rule that turns what a user typed into the email an account is keyed on.

Two spellings that a person would read as the same address must never name two
accounts, so every email that reaches a store goes through
:func:`normalize_email`, at registration and at login alike:

1. Refuse input longer than 1,024 characters outright (no legitimate address
   comes close, and the steps below should not run on megabytes).
2. Remove every invisible format character: Unicode category ``Cf``, which
   includes the zero-width space, non-joiner and joiner (U+200B to U+200D), the
   word joiner (U+2060), the byte-order mark (U+FEFF) and the soft hyphen
   (U+00AD).
3. Strip surrounding whitespace.
4. Apply Unicode compatibility normalisation (NFKC): full-width letters
   (U+FF21 to U+FF5A) become ASCII ones, ligatures and styled (mathematical,
   circled) letters become plain ones, a full-width ``@`` becomes ``@``.
5. ``casefold()`` the whole address, local part included, then apply NFKC once
   more so that normalising an already normalised address changes nothing.
6. Validate the result: exactly one ``@``; a non-empty local part of at most
   64 characters; a domain of dot-separated, non-empty labels (at least two);
   at most 254 characters in all; and no whitespace, control, surrogate,
   private-use or unassigned character anywhere.

Anything that fails raises :class:`~gatepass.errors.InvalidRequest` with one
fixed message, which never quotes the input.

The rule folds look-alikes that Unicode itself declares equivalent; it does not
chase confusables across scripts (the Cyrillic U+0430 stays distinct from the
Latin ``a``), and it does not guess at provider-specific aliases (dots or ``+tags``
in Gmail addresses stay significant).
"""

from __future__ import annotations

import unicodedata

from gatepass.errors import InvalidRequest

MAX_INPUT_LENGTH = 1024
MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 64

_MESSAGE = "Invalid email address."
#: Categories refused after normalisation: other (control, format, surrogate,
#: private use, unassigned) and separators (space, line, paragraph).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def normalize_email(raw: str) -> str:
    """Apply the rule in this module's docstring; raise InvalidRequest if it fails."""
    if not isinstance(raw, str) or len(raw) > MAX_INPUT_LENGTH:
        raise InvalidRequest(_MESSAGE)
    visible = "".join(ch for ch in raw if unicodedata.category(ch) != "Cf")
    folded = unicodedata.normalize("NFKC", visible.strip()).casefold()
    email = unicodedata.normalize("NFKC", folded)
    if not _is_valid(email):
        raise InvalidRequest(_MESSAGE)
    return email


def _is_valid(email: str) -> bool:
    if len(email) > MAX_LENGTH or email.count("@") != 1:
        return False
    if any(ch.isspace() or unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in email):
        return False
    local, domain = email.split("@")
    if not local or len(local) > MAX_LOCAL_LENGTH:
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(labels)
