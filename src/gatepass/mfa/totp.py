"""RFC 6238 TOTP and recovery codes: pure functions, no I/O.

* TOTP: 6 digits, 30-second steps, SHA-1 (what every authenticator app
  implements), codes accepted from the previous, current and next step only.
  :func:`matching_step` says *which* step a code belongs to: the store keeps
  the last step used per user and accepts only a later one, so each code
  works at most once (RFC 6238 §5.2).
* Recovery codes: 10 codes of 16 characters from a 31-letter alphabet
  (about 79 bits each).  They are stored as SHA-256 hashes: with that much
  entropy a fast hash is enough (nobody enumerates 2^79 preimages), unlike
  passwords, which people choose and which need a slow hash; a fast hash
  also lets the store find and delete a code in one atomic step.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyotp

DIGITS = 6
PERIOD = 30
#: Steps accepted on either side of the current one (clock drift, typing time).
WINDOW = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_RECOVERY_LENGTH = 16


def new_secret() -> str:
    """A fresh base32 secret: 160 bits, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    uri: str = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )
    return uri


def step_at(now: float) -> int:
    return int(now // PERIOD)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).at(step * PERIOD)


def is_code_shaped(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, *, now: float) -> int | None:
    """The time step (within ±WINDOW of ``now``) whose code is ``code``; else None.

    Every candidate step is compared (in constant time each), so the answer's
    timing does not tell which step matched.
    """
    if not is_code_shaped(code):
        return None
    current = step_at(now)
    found: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, step), code) and found is None:
            found = step
    return found


def new_recovery_codes() -> list[str]:
    """Ten fresh codes, shown to the user once, formatted ``xxxx-xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
    return codes


def normalize_recovery_code(code: str) -> str | None:
    """The canonical form of a typed code (case, dashes and spaces ignored); None if it
    cannot be one."""
    raw = "".join(c for c in code.lower() if c not in "- ")
    if len(raw) != _RECOVERY_LENGTH or any(c not in _RECOVERY_ALPHABET for c in raw):
        return None
    return raw


def recovery_hash(code: str) -> str:
    """SHA-256 (hex) of a normalised recovery code: what the store keeps."""
    return hashlib.sha256(b"gatepass-recovery-v1\x00" + code.encode()).hexdigest()

