"""One-time tokens for mailed links: password reset and email verification."""

from gatepass.onetime.store import Grant, OneTimeTokenStore
from gatepass.onetime.tokens import OneTimeTokens, Purpose

__all__ = ["Grant", "OneTimeTokenStore", "OneTimeTokens", "Purpose"]
