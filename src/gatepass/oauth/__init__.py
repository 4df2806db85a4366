"""Social and OpenID Connect sign-in: strategies, providers, identities."""

from gatepass.oauth.config import ProviderConfig, load_providers
from gatepass.oauth.identities import ExternalIdentity, IdentityStore, MemoryIdentityStore
from gatepass.oauth.providers import Profile, Provider
from gatepass.oauth.service import OAuthService
from gatepass.oauth.strategy import (
    CredentialStrategy,
    PasswordStrategy,
    RedirectStrategy,
    Strategies,
    Strategy,
)

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
]
