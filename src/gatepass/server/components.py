"""The server's parts, opened from settings and closed together."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from gatepass.accounts import Accounts
from gatepass.asgi.csrf import CSRF_COOKIE
from gatepass.clientip import TrustedProxies
from gatepass.cookies import CookieSpec
from gatepass.csrf import CSRFSigner, origin_of
from gatepass.dbsc import BoundCookies, DeviceBinding
from gatepass.drivers.opener import (
    open_factor_store,
    open_identity_store,
    open_one_time_token_store,
    open_passkey_store,
)
from gatepass.errors import ConfigurationError
from gatepass.forward_auth.source import RulesSource
from gatepass.identity import RolePermissions
from gatepass.mail import MailComposer, Mailer, Outbox, default_sender, parse_smtp_url
from gatepass.mfa.crypto import SecretBox
from gatepass.mfa.service import MFAService
from gatepass.oauth import service_class
from gatepass.oauth.config import load_providers
from gatepass.onetime import OneTimeTokens
from gatepass.passkeys.service import PasskeyService
from gatepass.redirects import safe_next_url
from gatepass.server.keys import KeyRingSource
from gatepass.server.secret_key import load_secrets
from gatepass.server.settings import Settings
from gatepass.sessions.config import SessionConfig
from gatepass.sessions.manager import SessionManager
from gatepass.stores.urls import open_session_store
from gatepass.templating import make_environment
from gatepass.throttle import LoginThrottle
from gatepass.throttle.quota import Quota
from gatepass.throttle.urls import open_throttle_store
from gatepass.tokens.access import AccessTokenCodec
from gatepass.tokens.backends.urls import open_refresh_store, open_revocation_store
from gatepass.tokens.scopes import ScopePolicy
from gatepass.tokens.service import RolesLoader, TokenService, VerifiedLoader
from gatepass.users.model import UserStore
from gatepass.users.passwords import PasswordHasher
from gatepass.users.urls import open_user_store

if TYPE_CHECKING:
    from gatepass.oauth.service import OAuthService

#: What each built-in role may do.  Apps built on the library pass their own.
DEFAULT_PERMISSIONS = RolePermissions({"admin": {"users:read", "users:write", "sessions:admin"}})


#: Reset and verification mails to one address per hour (SPEC).
MAIL_PER_EMAIL = 5


def users_roles(users: UserStore) -> RolesLoader:
    """A user's current roles from the store; None when gone or disabled."""

    async def load(user_id: str) -> tuple[str, ...] | None:
        user = await users.get(user_id)
        return None if user is None or user.disabled else user.roles

    return load


def users_verified(users: UserStore) -> VerifiedLoader:
    """Whether the user's email is verified now (False when gone)."""

    async def load(user_id: str) -> bool:
        user = await users.get(user_id)
        return user is not None and user.email_verified

    return load


def components(request: Request) -> Components:
    """The server's parts, from within a route."""
    parts: Components = request.app.state.gatepass.components
    return parts


@dataclass(slots=True)
class Components:
    settings: Settings
    accounts: Accounts
    sessions: SessionManager
    cookie: CookieSpec
    permissions: RolePermissions
    csrf: CSRFSigner
    proxies: TrustedProxies
    #: Origins whose unsafe requests the CSRF layer accepts: our own public
    #: origin plus the CORS allowlist.
    trusted_origins: frozenset[str]
    tokens: TokenService
    keys: KeyRingSource
    #: Registrations per client address (GATEPASS_REGISTRATION_LIMIT an hour).
    registrations: Quota
    #: Reset and verification links (SPEC "Account lifecycle and mail").
    links: OneTimeTokens
    #: Reset and verification mails per client address (GATEPASS_MAIL_LIMIT)
    #: and per email address (5 an hour).
    mail_per_address: Quota
    mail_per_email: Quota
    #: Renders the mails; :attr:`mailer` sends them off the request path.
    mail: MailComposer
    mailer: Mailer
    #: The Jinja2 environment of the pages and the mails (overrides first).
    templates: jinja2.Environment
    #: Starlette's renderer over it, for the pages.
    page_templates: Jinja2Templates
    #: Second factors and the two-step sign-in.
    mfa: MFAService
    #: Passkeys (WebAuthn): registration, sign-in alone, second factor.
    passkeys: PasskeyService
    #: The CSRF cookie: ``__Host-`` by default, ``__Secure-`` with a Domain
    #: in cookie domain mode (single sign-on across subdomains).
    csrf_cookie: CookieSpec = CSRF_COOKIE
    #: Forward-auth access rules (empty when none are configured).
    rules: RulesSource | None = None
    #: Social/OIDC sign-in; None when no provider is configured.
    oauth: OAuthService | None = None
    #: Device-bound sessions (W3C DBSC); None when the setting is off.
    dbsc: DeviceBinding | None = None

    def safe_next(self, value: str | None, default: str = "/account") -> str:
        """Where to send a user after login: a local path, or an absolute URL
        on a host the access rules name (forward auth's way back)."""
        hosts = self.rules.current.hosts if self.rules is not None else ()
        scheme = "https" if self.settings.public_url.startswith("https:") else "http"
        schemes = ("https",) if scheme == "https" else ("https", "http")
        return safe_next_url(value, hosts, default, schemes=schemes)

    @classmethod
    async def open(cls, settings: Settings) -> Components:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            # A file in the way, no permission, read-only disk: a clear message,
            # not a traceback (the CLI and start-up report ConfigurationError).
            raise ConfigurationError(
                f"Cannot use the data directory {str(settings.data_dir)!r}: "
                f"{exc.strerror or type(exc).__name__}."
            ) from None
        users = await open_user_store(settings.database_url)
        store = await open_session_store(settings.session_store_url)
        config = SessionConfig(
            idle_timeout=settings.session_idle_timeout,
            absolute_timeout=settings.session_absolute_timeout,
            remember_idle_timeout=max(settings.session_idle_timeout, 7 * 24 * 3600),
            remember_absolute_timeout=max(settings.session_absolute_timeout, 30 * 24 * 3600),
        )
        sessions = SessionManager(store, config)
        cookie = CookieSpec(
            name=settings.cookie_name,
            secure=settings.cookie_secure,
            same_site=settings.cookie_same_site,
            domain=settings.cookie_domain,
        )
        csrf_cookie = CookieSpec(
            name=settings.csrf_cookie_name, http_only=False, domain=settings.cookie_domain
        )
        rules = RulesSource(settings.access_rules or None)
        own_origin = origin_of(settings.public_url)
        if own_origin is None:
            raise ConfigurationError("GATEPASS_PUBLIC_URL must be an http(s) URL.")
        throttle = LoginThrottle(await open_throttle_store(settings.session_store_url))
        secrets = load_secrets(settings.secret_key, settings.data_dir)
        keys = KeyRingSource(settings.data_dir / "keys", alg=settings.jwt_algorithm)
        codec = AccessTokenCodec(
            keys,
            issuer=settings.public_url,
            audience=settings.public_url,
            ttl=settings.access_token_ttl,
        )
        tokens = TokenService(
            codec=codec,
            refresh_store=await open_refresh_store(settings.session_store_url),
            revocation=await open_revocation_store(settings.session_store_url),
            # Derived, not the CSRF secret itself: one key per purpose.
            server_key=hmac.new(secrets[0], b"gatepass-refresh-key", hashlib.sha256).digest(),
            refresh_ttl=settings.refresh_token_ttl,
            grace=settings.refresh_grace,
            mode=settings.revocation_mode,
            scopes=ScopePolicy.parse(settings.token_scopes),
            roles_loader=users_roles(users),
            verified_loader=users_verified(users),
        )
        # Reset and verification links, and passkey ceremonies' challenges:
        # account data, beside the users and their second factors (the
        # database URL).
        one_time = await open_one_time_token_store(settings.database_url)
        passkeys = PasskeyService(
            # Credentials are account data too.
            store=await open_passkey_store(settings.database_url),
            challenges=one_time,
            rp_id=urlsplit(settings.public_url).hostname or "",
            origin=own_origin,
        )
        mfa = MFAService(
            # Factors are account data: they live beside the users.
            store=await open_factor_store(settings.database_url),
            box=SecretBox(secrets),
            # Wrong codes count like wrong passwords, in counters of their own.
            throttle=LoginThrottle(throttle.store, namespace="mfa"),
            issuer=origin_of(settings.public_url) or "gatepass",
            passkeys=passkeys,
        )
        oauth = None
        providers = load_providers(settings.extra, settings.oauth_config)
        if providers:
            # Imported only now: the OAuth libraries are the optional extra
            # gatepass[oauth]; without them this is a clear ConfigurationError.
            oauth = service_class().build(
                providers,
                settings.public_url,
                await open_identity_store(settings.database_url),
                users,
                server_secrets=secrets,
                throttle_store=throttle.store,
                create_users=settings.oauth_create_users and settings.registration == "open",
                # A provider that asserts no verified email makes no account.
                require_verified_email=settings.email_verification == "required",
            )
            # Discovery now, so a broken provider is reported at start-up;
            # it does not stop the server (password sign-in still works).
            await oauth.start()
        templates = make_environment(settings.templates_dir)
        smtp = (
            parse_smtp_url(settings.smtp_url, ca_file=settings.smtp_ca_file or None)
            if settings.smtp_url
            else None
        )
        mail = MailComposer(
            templates,
            public_url=settings.public_url,
            sender=settings.mail_from or default_sender(settings.public_url),
        )
        mailer = Mailer(
            Outbox(settings.data_dir / "outbox"), smtp, retry_delays=settings.mail_retry_delays
        )
        links = OneTimeTokens(
            one_time,
            reset_ttl=settings.reset_token_ttl,
            verify_ttl=settings.verification_token_ttl,
        )
        dbsc = None
        if settings.dbsc:
            dbsc = DeviceBinding(
                cookies=BoundCookies(secrets, ttl=settings.dbsc_cookie_ttl),
                # Single-use challenges: the one-time token store's atomic take.
                challenges=links.store,
                refreshes=Quota(throttle.store, "dbsc-refresh", settings.dbsc_refresh_limit),
                origin=own_origin,
                required_roles=frozenset(settings.dbsc_required_roles),
                keys=secrets,
            )
        return cls(
            settings=settings,
            dbsc=dbsc,
            links=links,
            mail_per_address=Quota(throttle.store, "mail-address", settings.mail_limit),
            mail_per_email=Quota(throttle.store, "mail-email", MAIL_PER_EMAIL),
            mail=mail,
            mailer=mailer,
            templates=templates,
            page_templates=Jinja2Templates(env=templates),
            accounts=Accounts(
                users,
                sessions,
                PasswordHasher(),
                throttle=throttle,
                tokens=tokens,
                require_verified_email=settings.email_verification == "required",
            ),
            sessions=sessions,
            cookie=cookie,
            permissions=DEFAULT_PERMISSIONS,
            csrf=CSRFSigner(secrets),
            proxies=TrustedProxies(settings.trusted_proxies),
            trusted_origins=frozenset({own_origin, *settings.cors_origins}),
            tokens=tokens,
            keys=keys,
            registrations=Quota(throttle.store, "register", settings.registration_limit),
            csrf_cookie=csrf_cookie,
            rules=rules,
            mfa=mfa,
            passkeys=passkeys,
            oauth=oauth,
        )

    async def close(self) -> None:
        if self.oauth is not None:
            await self.oauth.close()
        await self.tokens.refresh_store.close()
        await self.links.store.close()
        await self.tokens.revocation.close()
        if self.accounts.throttle is not None:
            await self.accounts.throttle.store.close()
        await self.sessions.store.close()
        await self.mfa.store.close()
        await self.passkeys.store.close()
        await self.accounts.users.close()
        self.accounts.hasher.close()
