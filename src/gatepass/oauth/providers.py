"""One configured provider: discovery, the authorization URL, the code exchange.

Built on Authlib's async OAuth 2 client (over httpx) for the protocol steps
(authorization URL with PKCE S256, token request with the configured client
authentication); ID tokens are checked by :mod:`gatepass.oauth.idtoken`.
Everything the network can do wrong becomes
:class:`~gatepass.errors.ProviderUnavailable` (503), and everything the
provider or the browser says wrong :class:`~gatepass.errors.OAuthFailed`
(400).  Codes, tokens and states never reach a log or an error text.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning  # installs an "always" filter first

with warnings.catch_warnings():
    # Authlib 1.9 nudges towards the "httpx2" fork and warns, at import, on
    # plain httpx, which it still supports; gatepass stays on httpx (the
    # errors of both are handled below).  Not silenced, it would print on
    # every CLI command.
    warnings.filterwarnings(
        "ignore", message="The httpx module is deprecated", category=AuthlibDeprecationWarning
    )
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
    from authlib.integrations.httpx_client import oauth2_client as _authlib_client

from gatepass.errors import OAuthFailed, ProviderUnavailable
from gatepass.oauth.config import ProviderConfig, check_issuer
from gatepass.oauth.idtoken import ALLOWED_ALGORITHMS, JWKSCache, verify_id_token
from gatepass.oauth.transaction import Transaction
from gatepass.oauth.userinfo import plain_oauth_profile

logger = logging.getLogger("gatepass.oauth")

# Authlib 1.9 runs on "httpx2" when it is installed and on httpx otherwise;
# its client raises that library's errors, so both are caught.
_HTTP = getattr(_authlib_client, "httpx2", httpx)
_STATUS_ERRORS = (httpx.HTTPStatusError, _HTTP.HTTPStatusError)
_HTTP_ERRORS = (httpx.HTTPError, _HTTP.HTTPError)

#: Retry a failed discovery at most this often (seconds), on demand.
REDISCOVER_INTERVAL = 30.0
HTTP_TIMEOUT = 10.0
MAX_DOCUMENT = 512 * 1024

_STATIC: dict[str, dict[str, str]] = {
    "github": {
        "authorization_endpoint": "https://github.com/login/oauth/authorize",
        "token_endpoint": "https://github.com/login/oauth/access_token",
        "userinfo_endpoint": "https://api.github.com/user",
    },
    "facebook": {
        "authorization_endpoint": "https://www.facebook.com/v19.0/dialog/oauth",
        "token_endpoint": "https://graph.facebook.com/v19.0/oauth/access_token",
        "userinfo_endpoint": "https://graph.facebook.com/v19.0/me?fields=id,name,email",
    },
}


@dataclass(frozen=True, slots=True)
class Profile:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool


class Provider:
    def __init__(
        self,
        config: ProviderConfig,
        redirect_uri: str,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.redirect_uri = redirect_uri
        self._clock = clock
        self._transport = transport
        self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, transport=transport)
        self.metadata: dict[str, Any] | None = None
        self.status = "pending"
        self._tried_at = -REDISCOVER_INTERVAL
        self._jwks: JWKSCache | None = None

    @property
    def title(self) -> str:
        return self.config.title

    async def close(self) -> None:
        await self._http.aclose()

    # -- discovery -------------------------------------------------------

    async def discover(self) -> None:
        """Load (OIDC) or set (OAuth 2 presets) the endpoints; never raises."""
        self._tried_at = self._clock()
        if not self.config.is_oidc:
            self.metadata = dict(_STATIC[self.config.kind])
            self.status = "ok"
            return
        issuer = self.config.issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            document = await self.get_json(url)
        except ProviderUnavailable as exc:
            self.status = "unavailable"
            logger.error("OAuth provider %r: discovery failed: %s", self.name, exc.detail)
            return
        except OAuthFailed as exc:  # 404 and the like: a wrong ISSUER
            self.status = "misconfigured"
            logger.error("OAuth provider %r: discovery failed: %s", self.name, exc.reason)
            return
        problem = _check_discovery(document, issuer)
        if problem:
            self.status = "misconfigured"
            logger.error("OAuth provider %r: discovery refused: %s", self.name, problem)
            return
        self.metadata = dict(document)
        self._jwks = JWKSCache(document["jwks_uri"], self.get_json, self._clock)
        self.status = "ok"
        logger.info("OAuth provider %r: discovered %s", self.name, issuer)

    def rediscovery_due(self) -> bool:
        """Whether a failed discovery may be tried again now."""
        return self.metadata is None and self._clock() - self._tried_at >= REDISCOVER_INTERVAL

    async def ready(self) -> dict[str, Any]:
        """The metadata, retrying a failed discovery now and then; else 503."""
        if self.rediscovery_due():
            await self.discover()
        if self.metadata is None:
            raise ProviderUnavailable(
                f"Sign-in with {self.config.title} is unavailable right now; try again shortly.",
                provider=self.name,
            )
        return self.metadata

    async def get_json(self, url: str, token: str | None = None) -> Mapping[str, Any]:
        document = await self._fetch(url, token)
        if not isinstance(document, dict):
            raise self._malformed()
        return document

    async def get_json_list(self, url: str, token: str | None = None) -> list[Any]:
        document = await self._fetch(url, token)
        if not isinstance(document, list):
            raise self._malformed()
        return document

    def _malformed(self) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"{self.config.title} sent a malformed document.", provider=self.name
        )

    async def _fetch(self, url: str, token: str | None) -> Any:
        headers = {"accept": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"{self.config.title} cannot be reached ({type(exc).__name__}).",
                provider=self.name,
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(
                f"{self.config.title} answered {response.status_code}.", provider=self.name
            )
        if response.status_code != 200 or len(response.content) > MAX_DOCUMENT:
            raise OAuthFailed(reason=f"http_{response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise self._malformed() from None

    # -- the flow --------------------------------------------------------

    def _client(self, metadata: Mapping[str, Any]) -> AsyncOAuth2Client:
        secret = self.config.client_secret
        if not secret:
            method = "none"
        elif self.config.is_oidc and "client_secret_basic" not in metadata.get(
            "token_endpoint_auth_methods_supported", ["client_secret_basic"]
        ):
            method = "client_secret_post"
        elif self.config.is_oidc:
            method = "client_secret_basic"
        else:
            method = "client_secret_post"
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=secret or None,
            token_endpoint_auth_method=method,
            scope=" ".join(self.config.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT,
            transport=self._transport,
        )

    async def authorization_url(self, tx: Transaction) -> str:
        metadata = await self.ready()
        extra = {"nonce": tx.nonce} if self.config.is_oidc else {}
        async with self._client(metadata) as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=tx.state,
                code_verifier=tx.verifier,
                **extra,
            )
        assert isinstance(url, str) and "code_challenge_method=S256" in url
        return url

    def check_iss(self, presented: str | None) -> None:
        """RFC 9207: the authorization response names its issuer (mix-up defence)."""
        metadata = self.metadata or {}
        required = metadata.get("authorization_response_iss_parameter_supported") is True
        if presented is None and not required:
            return
        if presented != self.config.issuer:
            raise OAuthFailed(reason="iss_mismatch")

    async def complete(self, tx: Transaction, code: str) -> Profile:
        metadata = await self.ready()
        async with self._client(metadata) as client:
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=tx.verifier,
                    redirect_uri=self.redirect_uri,
                )
            except OAuthError as exc:
                # invalid_grant and friends: a code that is wrong, used or
                # not ours.  The provider's description is not echoed.
                raise OAuthFailed(reason=f"token_{exc.error}") from None
            except _STATUS_ERRORS as exc:
                raise ProviderUnavailable(
                    f"{self.config.title} answered {exc.response.status_code}.",
                    provider=self.name,
                ) from None
            except (*_HTTP_ERRORS, ValueError) as exc:
                raise ProviderUnavailable(
                    f"{self.config.title} cannot be reached ({type(exc).__name__}).",
                    provider=self.name,
                ) from None
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise OAuthFailed(reason="token_missing")
        if not self.config.is_oidc:
            return await plain_oauth_profile(self, access_token)
        assert self._jwks is not None
        claims = await verify_id_token(
            token.get("id_token"),
            self._jwks,
            algorithms=_algorithms(metadata),
            issuer=self.config.issuer,
            client_id=self.config.client_id,
            nonce=tx.nonce,
            now=self._clock(),
        )
        email, verified = claims.get("email"), claims.get("email_verified")
        userinfo = metadata.get("userinfo_endpoint")
        if email is None and "email" in self.config.scopes and isinstance(userinfo, str):
            info = await self.get_json(userinfo, access_token)
            if info.get("sub") == claims["sub"]:  # OIDC Core §5.3.2
                email, verified = info.get("email"), info.get("email_verified")
        return Profile(
            issuer=self.config.issuer,
            subject=claims["sub"],
            email=email if isinstance(email, str) else None,
            email_verified=verified is True or verified == "true",
        )


def _algorithms(metadata: Mapping[str, Any]) -> frozenset[str]:
    advertised = metadata.get("id_token_signing_alg_values_supported")
    if not isinstance(advertised, list):
        return frozenset({"RS256"})
    return frozenset(a for a in advertised if isinstance(a, str)) & ALLOWED_ALGORITHMS


def _check_discovery(document: Mapping[str, Any], issuer: str) -> str:
    """Why the discovery document cannot be used, or '' when it can."""
    if document.get("issuer") != issuer:
        # OIDC Discovery §4.3: exact match, or a mix-up is possible.
        return "its issuer differs from the configured ISSUER"
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str):
            return f"{name} is missing"
        try:
            check_issuer(value.split("?", 1)[0], name)
        except Exception:
            return f"{name} is not an https URL"
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        return "it does not support PKCE S256"
    return ""
