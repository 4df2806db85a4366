"""Strategies, passport-style: named ways to sign in, registered by an app.

Two shapes share one small protocol (a ``name`` and a ``title``):

* a :class:`CredentialStrategy` checks what the user typed (the local
  password strategy, :class:`PasswordStrategy`);
* a :class:`RedirectStrategy` sends the browser to a provider and turns its
  answer into a :class:`~gatepass.oauth.providers.Profile` (OIDC, Google,
  GitHub, Facebook: :class:`~gatepass.oauth.providers.Provider`).

Whatever the strategy, the result is a :class:`~gatepass.users.model.User`
and the same session (or token) issuance, under a fresh session id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from gatepass.errors import ConfigurationError, NotFound

if TYPE_CHECKING:
    from gatepass.accounts import Accounts
    from gatepass.oauth.profile import Profile
    from gatepass.oauth.transaction import Transaction
    from gatepass.users.model import User


@runtime_checkable
class Strategy(Protocol):
    name: str

    @property
    def title(self) -> str: ...


@runtime_checkable
class CredentialStrategy(Strategy, Protocol):
    async def authenticate(
        self, email: str, password: str, *, client_ip: str | None = None
    ) -> User: ...


@runtime_checkable
class RedirectStrategy(Strategy, Protocol):
    async def authorization_url(self, tx: Transaction) -> str: ...

    async def complete(self, tx: Transaction, code: str) -> Profile: ...


class PasswordStrategy:
    """Email and password against the local accounts (throttled, equal-time)."""

    def __init__(self, accounts: Accounts, name: str = "local") -> None:
        self.name = name
        self.accounts = accounts

    @property
    def title(self) -> str:
        return "Email and password"

    async def authenticate(
        self, email: str, password: str, *, client_ip: str | None = None
    ) -> User:
        return await self.accounts.authenticate(email, password, client_ip=client_ip)


class Strategies:
    """The registry: one strategy per name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Strategy] = {}

    def register(self, strategy: Strategy) -> None:
        if strategy.name in self._by_name:
            raise ConfigurationError(f"A strategy named {strategy.name!r} is already registered.")
        self._by_name[strategy.name] = strategy

    def get(self, name: str) -> Strategy:
        strategy = self._by_name.get(name)
        if strategy is None:
            raise NotFound("No such sign-in method.")
        return strategy

    def __contains__(self, name: object) -> bool:
        return name in self._by_name
