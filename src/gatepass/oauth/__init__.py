"""Social and OpenID Connect sign-in: strategies, providers, identities.

The protocol work needs the optional dependencies of ``gatepass[oauth]``
(Authlib, httpx, joserfc).  This package imports them only when a name that
needs them is used, so an app without providers runs on the core install;
:func:`service_class` is the one door through which the server reaches them,
with a clear error naming the extra when they are missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gatepass.errors import ConfigurationError

if TYPE_CHECKING:
    from gatepass.oauth.config import ProviderConfig, load_providers
    from gatepass.oauth.identities import ExternalIdentity, IdentityStore, MemoryIdentityStore
    from gatepass.oauth.profile import Profile
    from gatepass.oauth.providers import Provider
    from gatepass.oauth.service import OAuthService
    from gatepass.oauth.strategy import (
        CredentialStrategy,
        PasswordStrategy,
        RedirectStrategy,
        Strategies,
        Strategy,
    )

#: The third-party packages behind ``gatepass[oauth]``.
EXTRA_MODULES = frozenset({"authlib", "httpx", "joserfc"})
MISSING_EXTRA = (
    "Sign-in through OAuth/OIDC providers needs the optional dependencies: "
    "pip install 'gatepass[oauth]'."
)

_HOMES = {
    "ProviderConfig": "config",
    "load_providers": "config",
    "ExternalIdentity": "identities",
    "IdentityStore": "identities",
    "MemoryIdentityStore": "identities",
    "Profile": "profile",
    "Provider": "providers",
    "OAuthService": "service",
    "CredentialStrategy": "strategy",
    "PasswordStrategy": "strategy",
    "RedirectStrategy": "strategy",
    "Strategies": "strategy",
    "Strategy": "strategy",
}


def _load(module: str) -> Any:
    try:
        return importlib.import_module(f"gatepass.oauth.{module}")
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in EXTRA_MODULES:
            raise ConfigurationError(MISSING_EXTRA) from None
        raise


def service_class() -> type[OAuthService]:
    """:class:`OAuthService`, or ConfigurationError naming ``gatepass[oauth]``."""
    cls: type[OAuthService] = _load("service").OAuthService
    return cls


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gatepass.oauth' has no attribute {name!r}")
    return getattr(_load(home), name)


__all__ = [
    "CredentialStrategy",
    "ExternalIdentity",
    "IdentityStore",
    "MemoryIdentityStore",
    "OAuthService",
    "PasswordStrategy",
    "Profile",
    "Provider",
    "ProviderConfig",
    "RedirectStrategy",
    "Strategies",
    "Strategy",
    "load_providers",
    "service_class",
]
