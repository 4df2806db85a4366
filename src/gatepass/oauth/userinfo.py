"""Profiles from plain OAuth 2 providers (no ID token): GitHub and Facebook.

Their identities are keyed on the numeric account id, which never changes,
under the provider's fixed issuer string.  GitHub's ``/user/emails`` says
which address is verified; Facebook says nothing, so its email counts as
verified only when the provider is configured with ``trust_email``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gatepass.errors import OAuthFailed
from gatepass.oauth.config import ProviderConfig
from gatepass.oauth.profile import Profile


class Provider(Protocol):
    """What a profile is read through (:class:`gatepass.oauth.providers.Provider`)."""

    config: ProviderConfig
    metadata: dict[str, Any] | None

    async def get_json(self, url: str, token: str | None = None) -> Mapping[str, Any]: ...

    async def get_json_list(self, url: str, token: str | None = None) -> list[Any]: ...


async def plain_oauth_profile(provider: Provider, access_token: str) -> Profile:
    metadata = provider.metadata or {}
    user = await provider.get_json(metadata["userinfo_endpoint"], access_token)
    subject = user.get("id")
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise OAuthFailed(reason="profile_id")
    email: Any = user.get("email")
    verified = False
    if provider.config.kind == "github":
        email, verified = await _github_email(provider, metadata, access_token)
    elif provider.config.kind == "facebook":
        verified = provider.config.trust_email
    return Profile(
        issuer=provider.config.issuer,
        subject=subject,
        email=email if isinstance(email, str) else None,
        email_verified=bool(verified and isinstance(email, str)),
    )


async def _github_email(
    provider: Provider, metadata: dict[str, Any], access_token: str
) -> tuple[str | None, bool]:
    """The primary address, and whether GitHub verified it."""
    url = metadata["userinfo_endpoint"].rstrip("/") + "/emails"
    try:
        listed: Any = await provider.get_json_list(url, access_token)
    except OAuthFailed:
        return None, False  # scope user:email not granted
    for entry in listed:
        if isinstance(entry, dict) and entry.get("primary") is True:
            email = entry.get("email")
            if isinstance(email, str):
                return email, entry.get("verified") is True

    return None, False
