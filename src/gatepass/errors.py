"""The exception tree.

Every error gatepass raises on purpose derives from :class:`GatepassError`,
which is never raised directly.  Each class carries the stable error ``code``
of the HTTP contract; the mapping from these classes to HTTP statuses lives in
exactly one place, :mod:`gatepass.asgi.errors`.

Messages are written for the person reading them and never contain a secret:
no password, session id, token or cookie value is ever interpolated.
"""

from __future__ import annotations


class GatepassError(Exception):
    """Root of every gatepass error.  Never raised directly."""

    code: str = "error"
    #: Default human text, used when no message is given.
    default_detail: str = "An error occurred."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    @property
    def extra(self) -> dict[str, object]:
        """Members the error body carries beside ``error`` and ``detail``."""
        return {}


class ConfigurationError(GatepassError):
    """Settings that are unsafe or inconsistent; raised at start-up, not per request."""

    code = "configuration_error"
    default_detail = "The configuration is invalid."


class InvalidRequest(GatepassError):
    """The request is malformed: bad JSON, a missing field, a value out of range."""

    code = "invalid_request"
    default_detail = "The request is malformed."


class PayloadTooLarge(InvalidRequest):
    """A body, header or field exceeds its limit; refused before any parsing."""

    code = "payload_too_large"
    default_detail = "The request is too large."


class InvalidScope(InvalidRequest):
    """A requested scope is unknown to the scope policy (RFC 6749 §5.2)."""

    code = "invalid_scope"
    default_detail = "A requested scope is unknown."


class WeakPassword(InvalidRequest):
    """The new password does not meet the policy (length bounds)."""

    code = "weak_password"
    default_detail = "The password does not meet the policy."


class InvalidLinkToken(InvalidRequest):
    """A reset or verification token that is malformed, unknown, used, voided
    or expired: one answer for all, so a client learns nothing about which.
    Never carries the token."""

    code = "invalid_token"
    default_detail = "This link is invalid or has expired."


class NotAuthenticated(GatepassError):
    """No valid credentials came with the request."""

    code = "not_authenticated"
    default_detail = "Authentication required."


class InvalidCredentials(NotAuthenticated):
    """Email and password did not match an enabled account.

    The same error, with the same text, is raised for an unknown email, a
    wrong password and a disabled account, so that none can be told apart.
    """

    code = "invalid_credentials"
    default_detail = "Invalid email or password."


class InvalidToken(NotAuthenticated):
    """A bearer token (or token cookie) that cannot be accepted: malformed,
    badly signed, expired, revoked, for another audience or of another type.

    ``reason`` names the failed check for logs and tests; it never holds the
    token or any part of it.  RFC 6750 ``invalid_token``.
    """

    code = "invalid_token"
    default_detail = "The access token is invalid."

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class InvalidGrant(NotAuthenticated):
    """A refresh token that is unknown, expired, revoked or reused (RFC 6749)."""

    code = "invalid_grant"
    default_detail = "The refresh token is invalid, expired or revoked."

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class PermissionDenied(GatepassError):
    """The caller is authenticated but not allowed to do this."""

    code = "forbidden"
    default_detail = "You are not allowed to do this."

    def __init__(
        self,
        detail: str | None = None,
        *,
        required_roles: tuple[str, ...] = (),
        required_permissions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(detail)
        self.required_roles = required_roles
        self.required_permissions = required_permissions


class InsufficientScope(PermissionDenied):
    """A valid token without the scope this needs (RFC 6750)."""

    code = "insufficient_scope"
    default_detail = "The access token does not grant the required scope."


class EmailUnverified(PermissionDenied):
    """Sign-in refused until the account's email is verified
    (``GATEPASS_EMAIL_VERIFICATION=required``); the password was right."""

    code = "email_unverified"
    default_detail = "Confirm your email address before signing in."


class NotFound(GatepassError):
    code = "not_found"
    default_detail = "Not found."


class Conflict(GatepassError):
    code = "conflict"
    default_detail = "The resource already exists."


class UserExists(Conflict):
    code = "user_exists"
    default_detail = "An account with this email already exists."


class EmailTaken(Conflict):
    """An email change confirmed after another account took the address."""

    code = "email_taken"
    default_detail = "Another account has this email address now; nothing was changed."


class RateLimited(GatepassError):
    """Too many attempts; try again after ``retry_after`` seconds."""

    code = "rate_limited"
    default_detail = "Too many attempts; try again later."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class CSRFFailed(PermissionDenied):
    """A state-changing, cookie-authenticated request failed the CSRF checks.

    ``reason`` says which check failed (for logs); it never holds a token.
    """

    code = "csrf_failed"
    default_detail = "The request failed the cross-site request forgery check."

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class OAuthFailed(InvalidRequest):
    """A social/OIDC sign-in that cannot complete: missing, wrong or reused
    state, an error from the provider, an ID token that fails a check.

    ``reason`` names the failed check for logs and tests; it never holds a
    code, token, state or nonce.
    """

    code = "oauth_failed"
    default_detail = "The sign-in with the external provider failed; please try again."

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class ProviderUnavailable(GatepassError):
    """An external identity provider cannot be reached, answers with a server
    error, or its discovery failed or did not match the configuration."""

    code = "provider_unavailable"
    default_detail = "The sign-in provider is unavailable; try again shortly."

    def __init__(self, detail: str | None = None, *, provider: str = "") -> None:
        super().__init__(detail)
        self.provider = provider


class StoreUnavailable(GatepassError):
    """A store that the request needs cannot be reached.

    Never treated as "anonymous": the request is refused with 503 so that
    nothing is let through unchecked and clients keep their sessions.
    """

    code = "store_unavailable"
    default_detail = "A backing store is unavailable; try again shortly."

    def __init__(self, detail: str | None = None, *, store: str = "") -> None:
        super().__init__(detail)
        self.store = store


class MFARequired(NotAuthenticated):
    """The first step passed; the user has a second factor.  Carries the
    ``mfa_token`` for ``POST /auth/mfa/verify`` and the methods it accepts."""

    code = "mfa_required"
    default_detail = "A second factor is required to finish signing in."

    def __init__(self, mfa_token: str, methods: tuple[str, ...]) -> None:
        super().__init__()
        self.mfa_token = mfa_token
        self.methods = methods

    @property
    def extra(self) -> dict[str, object]:
        return {"mfa_token": self.mfa_token, "methods": list(self.methods)}


class InvalidMFAToken(NotAuthenticated):
    """An mfa_token that is unknown, used, expired, void after too many attempts,
    or presented by another client: sign in again from the first step."""

    code = "invalid_mfa_token"
    default_detail = "The sign-in attempt has expired or is invalid; please sign in again."


class InvalidCode(NotAuthenticated):
    """A TOTP or recovery code that is wrong, already used or out of its window."""

    code = "invalid_code"
    default_detail = "The code is invalid or has already been used."


class InvalidPasskey(NotAuthenticated):
    """A passkey assertion that does not sign in: unknown credential, a challenge
    that is unknown, used, expired or another client's, a wrong origin or RP ID,
    a bad signature, missing user verification, or a counter gone backwards."""

    code = "invalid_passkey"
    default_detail = "The passkey could not be verified; please try again."


class PasskeyRejected(InvalidRequest):
    """A passkey registration that does not verify (400: the signed-in user
    stays signed in; the same failure causes as :class:`InvalidPasskey`)."""

    code = "invalid_passkey"
    default_detail = "The passkey could not be registered; please try again."


class InsufficientAuthentication(PermissionDenied):
    """Signed in, but not recently enough or without a second factor (RFC 9470's
    ``insufficient_user_authentication``).  403, not 401: the login is good and a
    client must not drop it; it must re-authenticate or step up."""

    code = "insufficient_user_authentication"
    default_detail = "This needs a more recent or a stronger sign-in."


class MFAEnrollmentRequired(PermissionDenied):
    """The caller's role needs a second factor and the account has none yet:
    only enrolment (and signing out) is open to this login."""

    code = "mfa_enrollment_required"
    default_detail = "Your role needs two-step verification: set it up to continue."
