"""The OAuth/OIDC sign-in flow, from ``/start`` to the user at ``/callback``.

Framework-free: the server's routes hand in the query parameters and the
transaction cookie and get back a URL and a cookie, or a user.  The order of
the callback checks is the point: sizes, then the transaction bound to this
browser, then the state (constant-time), then single use, then the provider's
``error`` and ``iss``, and only then is the code spent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from gatepass.errors import NotFound, OAuthFailed
from gatepass.oauth.config import ProviderConfig
from gatepass.oauth.identities import IdentityStore
from gatepass.oauth.linking import AccountLinker
from gatepass.oauth.providers import Provider
from gatepass.oauth.strategy import Strategies
from gatepass.oauth.transaction import SingleUse, Transaction, TransactionSealer
from gatepass.throttle.store import ThrottleStore
from gatepass.users.model import User, UserStore

logger = logging.getLogger("gatepass.oauth")

#: Per-parameter limits on the authorization response (characters).
_LIMITS = {"state": 512, "code": 4096, "iss": 2048, "error": 128}
_DEFAULT_LIMIT = 2048
MAX_PARAMS = 16

_RESTART = "Please start the sign-in again."


class OAuthService:
    def __init__(
        self,
        providers: Sequence[Provider],
        identities: IdentityStore,
        users: UserStore,
        *,
        server_secrets: Sequence[bytes],
        throttle_store: ThrottleStore,
        create_users: bool = True,
        require_verified_email: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.providers = {p.name: p for p in providers}
        self.strategies = Strategies()
        for provider in providers:
            self.strategies.register(provider)
        self.identities = identities
        self.sealer = TransactionSealer(server_secrets)
        self.single_use = SingleUse(throttle_store)
        self.linker = AccountLinker(
            users, identities, create_users=create_users,
            require_verified_email=require_verified_email, clock=clock,
        )  # fmt: skip
        self._clock = clock

    @classmethod
    def build(
        cls,
        configs: Iterable[ProviderConfig],
        public_url: str,
        identities: IdentityStore,
        users: UserStore,
        **kwargs: object,
    ) -> OAuthService:
        providers = [Provider(c, c.redirect_uri(public_url)) for c in configs]
        return cls(providers, identities, users, **kwargs)  # type: ignore[arg-type]

    async def start(self) -> None:
        """Discover every provider now; failures are logged and retried on use."""
        await asyncio.gather(*(p.discover() for p in self.providers.values()))

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
        await self.identities.close()

    def status(self) -> dict[str, str]:
        return {name: p.status for name, p in self.providers.items()}

    def provider(self, name: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise NotFound("No such sign-in provider.")
        return provider

    async def begin(
        self, name: str, *, next_path: str, link_user: str | None
    ) -> tuple[str, Transaction, str]:
        """The provider URL to redirect to, the transaction and its sealed cookie value."""
        provider = self.provider(name)
        tx = Transaction.begin(name, next_path, link_user, now=self._clock())
        url = await provider.authorization_url(tx)
        return url, tx, self.sealer.seal(tx)

    async def finish(
        self,
        name: str,
        items: Iterable[tuple[str, str]],
        sealed: str | None,
        *,
        current_user: str | None,
    ) -> tuple[User, Transaction]:
        provider = self.provider(name)
        params = parse_params(items)
        now = self._clock()
        tx = self.sealer.open(sealed, now=now)
        if tx is None or tx.provider != name:
            raise OAuthFailed(
                "This sign-in expired or was started in another browser. " + _RESTART,
                reason="no_transaction",
            )
        state = params.get("state")
        if not state:
            raise OAuthFailed("The provider's answer carries no state. " + _RESTART,
                              reason="state_missing")  # fmt: skip
        if not tx.state_matches(state):
            raise OAuthFailed(
                "The provider's answer does not belong to this browser's sign-in. " + _RESTART,
                reason="state_mismatch",
            )
        if not await self.single_use.first_use(tx, now=now):
            raise OAuthFailed("This sign-in answer was already used. " + _RESTART,
                              reason="replayed")  # fmt: skip
        provider.check_iss(params.get("iss"))  # RFC 9207, error responses included
        error = params.get("error")
        if error is not None:
            reason = "access_denied" if error == "access_denied" else "provider_error"
            raise OAuthFailed(
                "The sign-in was cancelled or refused at the provider.", reason=reason
            )
        code = params.get("code")
        if not code:
            raise OAuthFailed("The provider's answer carries no code. " + _RESTART,
                              reason="code_missing")  # fmt: skip
        if tx.link_user is not None and tx.link_user != current_user:
            raise OAuthFailed(
                "You are no longer signed in as the account being linked. " + _RESTART,
                reason="link_session",
            )
        profile = await provider.complete(tx, code)
        user = await self.linker.resolve(provider.config, profile, link_user=tx.link_user)
        logger.info(
            "OAuth %s via %r for user %s",
            "link" if tx.link_user else "sign-in", name, user.id,
        )  # fmt: skip
        return user, tx


def parse_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The authorization response's parameters: each once (RFC 6749 §3.1), bounded."""
    params: dict[str, str] = {}
    for count, (key, value) in enumerate(items, start=1):
        if count > MAX_PARAMS or len(key) > 64:
            raise OAuthFailed("The provider's answer is too large.", reason="oversize")
        if len(value) > _LIMITS.get(key, _DEFAULT_LIMIT):
            raise OAuthFailed("The provider's answer is too large.", reason="oversize")
        if key in params:
            raise OAuthFailed("The provider's answer repeats a parameter.", reason="duplicate")
        params[key] = value
    return params
