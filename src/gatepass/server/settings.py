"""Server settings: flags, then ``GATEPASS_*`` environment variables, then defaults.

Read once at start-up into a frozen dataclass and validated there; nothing
reads the environment afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from gatepass.csrf import normalize_origins, origin_of
from gatepass.errors import ConfigurationError
from gatepass.tokens.scopes import ScopePolicy

BrowserMode = Literal["session", "jwt"]
Registration = Literal["open", "closed"]
EmailVerification = Literal["off", "optional", "required"]


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".gatepass")
    #: Users and accounts.  Default: SQLite in the data dir.
    database_url: str = ""
    #: Sessions (and later tokens, revocation, throttling).  Default: the database.
    session_store_url: str = ""
    public_url: str = ""
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    browser_mode: BrowserMode = "session"
    registration: Registration = "open"
    session_idle_timeout: int = 30 * 60
    session_absolute_timeout: int = 8 * 60 * 60
    #: Access tokens are short-lived: revocation is checked on every request,
    #: but a short life also bounds what a stolen token is worth.
    access_token_ttl: int = 5 * 60
    #: A refresh family lives at most this long, however often it rotates.
    refresh_token_ttl: int = 14 * 24 * 60 * 60
    #: Seconds during which a just-rotated refresh token, presented again (two
    #: tabs refreshing at once), gets the same successor instead of revoking
    #: the family.  Short: it is also how long a thief's copy stays useful.
    refresh_grace: int = 10
    jwt_algorithm: Literal["EdDSA", "ES256", "RS256", "HS256"] = "RS256"
    #: "Stateful JWT": roles are loaded from the user store on every request
    #: instead of trusted from the token, so a role change applies at once.
    jwt_stateful: bool = False
    #: "denylist": revoked jtis are listed until they expire (default);
    #: "allowlist": only listed jtis are valid.
    revocation_mode: Literal["denylist", "allowlist"] = "denylist"
    #: Rotate the signing key when the active one is older than this (0: never).
    key_rotation_days: int = 30
    #: The session cookie's name; ``__Host-`` keeps it bound to this host.
    cookie_name: str = "__Host-gatepass"
    #: Secure cookies are accepted by browsers on http://127.0.0.1 and
    #: http://localhost, so the safe default costs nothing in development.
    cookie_secure: bool = True
    cookie_same_site: Literal["lax", "strict", "none"] = "lax"
    #: Single sign-on across subdomains (opt-in): the session and CSRF
    #: cookies get ``Domain=`` this, and the ``__Secure-`` prefix instead of
    #: ``__Host-`` (which forbids a Domain).  Every host under it then
    #: receives the session cookie: only for domains whose hosts you all trust.
    cookie_domain: str | None = None
    #: Largest request body accepted on the JSON and form endpoints.
    max_body_bytes: int = 64 * 1024
    #: HMAC secrets (comma-separated, newest first); default: generated into
    #: the data dir.  Never shown in a repr.
    secret_key: str = field(default="", repr=False)
    #: A TOML file of ``[providers.<name>]`` tables (social/OIDC sign-in).
    oauth_config: str = ""
    #: Whether a first sign-in through a provider creates an account.
    oauth_create_users: bool = True
    #: Which scopes each role may hold in access tokens:
    #: ``"admin=users:read users:write; *=profile"`` (``*``: every user).
    #: Empty: tokens carry no scopes, whatever a client asks for.
    token_scopes: str = ""
    #: Registrations accepted per client address per hour (0: no limit).
    registration_limit: int = 20
    #: Outgoing mail: ``smtp://``, ``smtp+starttls://`` or ``smtps://`` with
    #: optional ``user:pass@``.  Empty: mail is written to ``<data dir>/outbox/``.
    #: Holds a password: never shown in a repr.
    smtp_url: str = field(default="", repr=False)
    #: A PEM file of CAs to trust for the SMTP server, besides the system's.
    smtp_ca_file: str = ""
    #: The ``From`` of every mail; required with an SMTP server.
    mail_from: str = ""
    #: Seconds to wait before each retry of a mail the SMTP server did not take.
    mail_retry_delays: tuple[float, ...] = (2.0, 10.0, 60.0)
    #: ``off``: no verification mail; ``optional``: mailed, sign-in allowed;
    #: ``required``: sign-in and tokens refused (403) until verified.
    email_verification: EmailVerification = "optional"
    #: Reset and verification mails per client address per hour (0: no
    #: limit); per email address it is always 5 an hour.
    mail_limit: int = 20
    #: Seconds a password-reset link works.
    reset_token_ttl: int = 30 * 60
    #: Seconds an email-verification link works.
    verification_token_ttl: int = 48 * 60 * 60
    #: A folder of template overrides (pages and mails), searched first.
    templates_dir: Path | None = None
    #: ``GATEPASS_OAUTH_*`` variables (provider names are dynamic, so they
    #: are read by :mod:`gatepass.oauth.config`).  Holds client secrets:
    #: never shown in a repr.
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Forward-auth rules (a TOML file); empty: every request needs a user.
    access_rules: str = ""
    #: Seconds a proxy may cache a 200 from ``/auth/verify`` (0: never).
    #: Also how long access survives a logout behind such a cache.
    forward_auth_cache: int = 0
    #: Serve HTTPS directly: a PEM certificate chain and its private key.
    tls_cert: str = ""
    tls_key: str = ""
    #: Roles whose users must have a second factor (``admin,ops``): such a
    #: login without one is walked through enrolment and refused elsewhere.
    mfa_required_roles: tuple[str, ...] = ()
    #: Device-bound sessions (W3C DBSC): ``on`` offers every browser login a
    #: binding to a key the browser keeps; needs an https public URL.
    device_bound_sessions: Literal["on", "off"] = "off"
    #: Lifetime of the bound cookie (seconds): how long a copied session
    #: cookie can be used with a copied bound cookie, at most.
    dbsc_cookie_ttl: int = 600
    #: Roles whose logins must bind: such a login is refused after the
    #: registration window (5 minutes) unless its browser registered a key.
    dbsc_required_roles: tuple[str, ...] = ()
    #: Bound-cookie refreshes allowed per DBSC session per hour.
    dbsc_refresh_limit: int = 60

    def __post_init__(self) -> None:
        # Library callers pass plain strings and lists; keep the declared types.
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))
        object.__setattr__(self, "mfa_required_roles", tuple(self.mfa_required_roles))
        _check_roles(self.mfa_required_roles)
        object.__setattr__(self, "dbsc_required_roles", tuple(self.dbsc_required_roles))
        if not 0 < self.port < 65536:
            raise ConfigurationError("port must be between 1 and 65535.")
        if self.browser_mode not in ("session", "jwt"):
            raise ConfigurationError("GATEPASS_BROWSER_MODE must be 'session' or 'jwt'.")
        if self.revocation_mode not in ("denylist", "allowlist"):
            raise ConfigurationError("GATEPASS_REVOCATION_MODE must be 'denylist' or 'allowlist'.")
        if self.jwt_algorithm not in ("EdDSA", "ES256", "RS256", "HS256"):
            raise ConfigurationError("GATEPASS_JWT_ALGORITHM must be EdDSA, ES256, RS256 or HS256.")
        if self.access_token_ttl <= 10 or self.refresh_token_ttl <= self.access_token_ttl:
            raise ConfigurationError(
                "GATEPASS_ACCESS_TOKEN_TTL must exceed 10 s and be shorter than the refresh TTL."
            )
        if not 0 <= self.refresh_grace <= 60:
            raise ConfigurationError("GATEPASS_REFRESH_GRACE must be between 0 and 60 seconds.")
        if self.registration not in ("open", "closed"):
            raise ConfigurationError("GATEPASS_REGISTRATION must be 'open' or 'closed'.")
        if not self.database_url:
            db = (self.data_dir / "gatepass.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite:///{db}")
        if not self.session_store_url:
            object.__setattr__(self, "session_store_url", self.database_url)
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigurationError("GATEPASS_TLS_CERT and GATEPASS_TLS_KEY go together.")
        for name in ("tls_cert", "tls_key", "access_rules"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ConfigurationError(f"GATEPASS_{name.upper()}: no such file {value!r}.")
        if not 0 <= self.forward_auth_cache <= 300:
            raise ConfigurationError("GATEPASS_FORWARD_AUTH_CACHE must be 0 to 300 seconds.")
        if not self.public_url:
            scheme = "https" if self.tls_cert else "http"
            object.__setattr__(self, "public_url", f"{scheme}://{self.host}:{self.port}")
        if self.cookie_domain is not None:
            self._check_cookie_domain()
        # Everything a middleware would otherwise only meet at the first
        # request (and answer with a 500): checked here, once.
        if origin_of(self.public_url) is None:
            raise ConfigurationError("GATEPASS_PUBLIC_URL must be an http(s) URL.")
        normalize_origins(self.cors_origins)
        ScopePolicy.parse(self.token_scopes)
        if self.registration_limit < 0:
            raise ConfigurationError("GATEPASS_REGISTRATION_LIMIT must be 0 or more.")
        for name in ("session_idle_timeout", "session_absolute_timeout", "max_body_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"GATEPASS_{name.upper()} must be positive.")
        _check_mail(self)
        if self.email_verification not in ("off", "optional", "required"):
            raise ConfigurationError(
                "GATEPASS_EMAIL_VERIFICATION must be 'off', 'optional' or 'required'."
            )
        if self.mail_limit < 0:
            raise ConfigurationError("GATEPASS_MAIL_LIMIT must be 0 or more.")
        if not 60 <= self.reset_token_ttl <= 24 * 3600:
            raise ConfigurationError("GATEPASS_RESET_TOKEN_TTL must be 60 s to 24 hours.")
        if not 60 <= self.verification_token_ttl <= 30 * 24 * 3600:
            raise ConfigurationError("GATEPASS_VERIFICATION_TOKEN_TTL must be 60 s to 30 days.")
        self._check_dbsc()
        if self.session_idle_timeout > self.session_absolute_timeout:
            raise ConfigurationError(
                "GATEPASS_SESSION_IDLE_TIMEOUT cannot exceed GATEPASS_SESSION_ABSOLUTE_TIMEOUT."
            )

    def _check_dbsc(self) -> None:
        if self.device_bound_sessions not in ("on", "off"):
            raise ConfigurationError("GATEPASS_DEVICE_BOUND_SESSIONS must be 'on' or 'off'.")
        if not 130 <= self.dbsc_cookie_ttl <= 24 * 3600:
            # Chromium refreshes when less than ~120 s are left: a shorter
            # lifetime would have it refresh before every request.
            raise ConfigurationError("GATEPASS_DBSC_COOKIE_TTL must be 130 s to 24 hours.")
        if self.dbsc_refresh_limit < 0:
            raise ConfigurationError("GATEPASS_DBSC_REFRESH_LIMIT must be 0 or more.")
        if self.device_bound_sessions == "off":
            if self.dbsc_required_roles:
                raise ConfigurationError(
                    "GATEPASS_DBSC_REQUIRED_ROLES needs GATEPASS_DEVICE_BOUND_SESSIONS=on."
                )
            return
        if not self.public_url.startswith("https://"):
            # Browsers ignore the offer on plain http, and the bound cookie
            # is a __Host- cookie: on http it would be a silent no-op.
            raise ConfigurationError(
                "GATEPASS_DEVICE_BOUND_SESSIONS=on needs an https GATEPASS_PUBLIC_URL."
            )
        if not self.cookie_secure:
            raise ConfigurationError(
                "GATEPASS_DEVICE_BOUND_SESSIONS=on needs GATEPASS_COOKIE_SECURE=true."
            )
        if self.cookie_domain is not None:
            # The bound cookie is __Host- (this host only): sibling hosts
            # would receive the session cookie but never the bound one.
            raise ConfigurationError(
                "GATEPASS_DEVICE_BOUND_SESSIONS=on cannot be combined with GATEPASS_COOKIE_DOMAIN."
            )

    @property
    def dbsc(self) -> bool:
        """Whether device-bound sessions are on."""
        return self.device_bound_sessions == "on"

    def _check_cookie_domain(self) -> None:
        domain = (self.cookie_domain or "").lower().removeprefix(".")
        host = urlsplit(self.public_url).hostname or ""
        if not domain or "." not in domain or not (host == domain or host.endswith("." + domain)):
            # Browsers drop a cookie whose Domain does not cover the host
            # that sets it; a one-label domain would be a public suffix.
            raise ConfigurationError(
                "GATEPASS_COOKIE_DOMAIN must be the host of GATEPASS_PUBLIC_URL or a parent "
                "domain of it (e.g. example.test for https://auth.example.test)."
            )
        object.__setattr__(self, "cookie_domain", domain)
        if self.cookie_name == "__Host-gatepass":
            object.__setattr__(self, "cookie_name", "__Secure-gatepass")

    @property
    def csrf_cookie_name(self) -> str:
        """``__Host-gatepass-csrf``, or its ``__Secure-`` twin in cookie domain mode."""
        return "__Host-gatepass-csrf" if self.cookie_domain is None else "__Secure-gatepass-csrf"

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from flags (``overrides``, None values ignored) and the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "extra": {k: v for k, v in env.items() if k.startswith("GATEPASS_OAUTH_")}
        }
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"GATEPASS_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, raw)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc


def _check_mail(settings: Settings) -> None:
    # Local import: the mail package is heavier than this module needs to be.
    from gatepass.mail.config import parse_sender, parse_smtp_url

    if settings.smtp_url:
        parse_smtp_url(settings.smtp_url)  # raises ConfigurationError, never echoing the URL
        if not settings.mail_from:
            raise ConfigurationError("GATEPASS_MAIL_FROM is required with GATEPASS_SMTP_URL.")
    if settings.mail_from:
        parse_sender(settings.mail_from)
    if len(settings.mail_retry_delays) > 10 or any(
        not 0 <= d <= 3600 for d in settings.mail_retry_delays
    ):
        raise ConfigurationError(
            "GATEPASS_MAIL_RETRY_DELAYS takes at most 10 delays of 0 to 3600 seconds."
        )


#: What a role name may look like (as in the forward-auth rules).
_ROLE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _check_roles(roles: tuple[str, ...]) -> None:
    for role in roles:
        if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
            raise ConfigurationError(
                "GATEPASS_MFA_REQUIRED_ROLES must be a comma-separated list of role names "
                "(letters, digits, '_', '.', ':', '-'; at most 64 characters each)."
            )
    if len(set(roles)) != len(roles):
        raise ConfigurationError("GATEPASS_MFA_REQUIRED_ROLES names a role twice.")


def _convert(name: str, raw: str) -> Any:
    if name in ("port", "session_idle_timeout", "session_absolute_timeout", "max_body_bytes",
                "access_token_ttl", "refresh_token_ttl", "key_rotation_days",
                "refresh_grace", "registration_limit", "forward_auth_cache", "mail_limit",
                "reset_token_ttl", "verification_token_ttl", "dbsc_cookie_ttl",
                "dbsc_refresh_limit"):  # fmt: skip
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"GATEPASS_{name.upper()} must be an integer.") from None
    if name in ("cookie_secure", "jwt_stateful", "oauth_create_users"):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigurationError(f"GATEPASS_{name.upper()} must be true or false.")
        return raw.lower() in ("1", "true", "yes")
    if name in ("data_dir", "templates_dir"):
        return Path(raw)
    if name == "mail_retry_delays":
        try:
            return tuple(float(part) for part in raw.split(",") if part.strip())
        except ValueError:
            raise ConfigurationError(
                "GATEPASS_MAIL_RETRY_DELAYS must be comma-separated seconds."
            ) from None
    if name == "device_bound_sessions":
        return raw.strip().lower()
    if name in ("cors_origins", "trusted_proxies", "mfa_required_roles", "dbsc_required_roles"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
