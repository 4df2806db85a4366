"""Provider configuration: from ``GATEPASS_OAUTH_*`` variables or a TOML file.

Environment (SPEC)::

    GATEPASS_OAUTH_PROVIDERS=google,corp
    GATEPASS_OAUTH_GOOGLE_KIND=google
    GATEPASS_OAUTH_GOOGLE_CLIENT_ID=…   GATEPASS_OAUTH_GOOGLE_CLIENT_SECRET=…
    GATEPASS_OAUTH_CORP_ISSUER=https://login.example.com   (KIND defaults to oidc)

or ``GATEPASS_OAUTH_CONFIG=providers.toml`` with one ``[providers.<name>]``
table per provider holding the same keys in lower case.  Validated once, at
start-up; a mistake is a :class:`~gatepass.errors.ConfigurationError` naming
the provider and the key, never quoting a secret.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from gatepass.errors import ConfigurationError

Kind = Literal["oidc", "google", "github", "facebook"]
KINDS: tuple[Kind, ...] = get_args(Kind)

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

#: Fixed issuers: Google's is its OIDC issuer; GitHub and Facebook have none
#: (plain OAuth 2), so their identities are keyed under their web origin.
PRESET_ISSUERS: dict[str, str] = {
    "google": "https://accounts.google.com",
    "github": "https://github.com",
    "facebook": "https://www.facebook.com",
}
_DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "oidc": ("openid", "email", "profile"),
    "google": ("openid", "email", "profile"),
    "github": ("read:user", "user:email"),
    "facebook": ("email", "public_profile"),
}
_TITLES = {"google": "Google", "github": "GitHub", "facebook": "Facebook"}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    kind: Kind
    client_id: str
    #: Empty: a public client (``token_endpoint_auth_method=none``; PKCE alone).
    client_secret: str = field(default="", repr=False)
    issuer: str = ""
    scopes: tuple[str, ...] = ()
    title: str = ""
    #: Whether a verified email from this provider may sign in to an existing
    #: account with that email (auto-link).  Off by default: local accounts
    #: are not email-verified, so whoever registered the address first would
    #: get the provider user's account ("pre-account takeover").  Facebook
    #: says nothing about verification: with this on, its email counts as
    #: verified.
    trust_email: bool = False

    def __post_init__(self) -> None:
        where = f"OAuth provider {self.name!r}"
        if not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                f"{where}: a name is 1-32 of a-z, 0-9, '_' and '-', "
                "starting with a letter or digit."
            )
        if self.kind not in KINDS:
            raise ConfigurationError(f"{where}: KIND must be one of {', '.join(KINDS)}.")
        if not self.client_id:
            raise ConfigurationError(f"{where}: CLIENT_ID is required.")
        issuer = self.issuer or PRESET_ISSUERS.get(self.kind, "")
        if not issuer:
            raise ConfigurationError(f"{where}: ISSUER is required for kind 'oidc'.")
        check_issuer(issuer, where)
        object.__setattr__(self, "issuer", issuer)
        if not self.scopes:
            object.__setattr__(self, "scopes", _DEFAULT_SCOPES[self.kind])
        if self.kind in ("oidc", "google") and "openid" not in self.scopes:
            raise ConfigurationError(f"{where}: SCOPES must include 'openid'.")
        if not self.title:
            object.__setattr__(self, "title", _TITLES.get(self.kind, self.name.capitalize()))

    @property
    def is_oidc(self) -> bool:
        return self.kind in ("oidc", "google")

    def redirect_uri(self, public_url: str) -> str:
        """The exact callback URL registered at the provider."""
        return f"{public_url.rstrip('/')}/auth/oauth/{self.name}/callback"


def check_issuer(issuer: str, where: str) -> None:
    """https, no query or fragment; plain http only on a loopback host (tests, dev)."""
    try:
        parts = urlsplit(issuer)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigurationError(f"{where}: ISSUER is not a URL.") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)
    if not secure or not host or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{where}: ISSUER must be an https URL without query or fragment "
            "(http only on 127.0.0.1 or localhost)."
        )


def _bool(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("1", "0", "true", "false", "yes", "no"):
        return raw.lower() in ("1", "true", "yes")
    raise ConfigurationError(f"{where}: TRUST_EMAIL must be true or false.")


def _scopes(raw: object, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(s for s in raw.replace(",", " ").split() if s)
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return tuple(raw)
    raise ConfigurationError(f"{where}: SCOPES must be a list or a space-separated string.")


_KEYS = ("kind", "issuer", "client_id", "client_secret", "scopes", "title", "trust_email")


def _build(name: str, values: Mapping[str, Any]) -> ProviderConfig:
    where = f"OAuth provider {name!r}"
    unknown = sorted(set(values) - set(_KEYS))
    if unknown:
        raise ConfigurationError(f"{where}: unknown setting {unknown[0]!r}.")
    for key in ("kind", "issuer", "client_id", "client_secret", "title"):
        if key in values and not isinstance(values[key], str):
            raise ConfigurationError(f"{where}: {key.upper()} must be a string.")
    kind = values.get("kind") or "oidc"
    if kind not in KINDS:
        raise ConfigurationError(f"{where}: KIND must be one of {', '.join(KINDS)}.")
    return ProviderConfig(
        name=name,
        kind=kind,
        client_id=values.get("client_id", ""),
        client_secret=values.get("client_secret", ""),
        issuer=values.get("issuer", ""),
        scopes=_scopes(values["scopes"], where) if "scopes" in values else (),
        title=values.get("title", ""),
        trust_email=_bool(values.get("trust_email", False), where),
    )


def from_environ(environ: Mapping[str, str]) -> list[ProviderConfig]:
    names = [n.strip().lower() for n in environ.get("GATEPASS_OAUTH_PROVIDERS", "").split(",")]
    providers = []
    for name in filter(None, names):
        prefix = f"GATEPASS_OAUTH_{name.upper().replace('-', '_')}_"
        # Only the known keys: provider "a" must not read provider "a_b"'s.
        values = {key: environ[prefix + key.upper()] for key in _KEYS
                  if environ.get(prefix + key.upper())}  # fmt: skip
        providers.append(_build(name, values))
    return providers


def from_toml(path: str) -> list[ProviderConfig]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read GATEPASS_OAUTH_CONFIG {path!r}: {exc.strerror}."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"GATEPASS_OAUTH_CONFIG {path!r} is not valid TOML: {exc}"
        ) from None
    tables = data.get("providers", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigurationError(
            f"GATEPASS_OAUTH_CONFIG {path!r}: expected [providers.<name>] tables."
        )
    return [_build(name, values) for name, values in tables.items()]


def load_providers(environ: Mapping[str, str], config_file: str = "") -> list[ProviderConfig]:
    """Every configured provider; the same name twice is an error."""
    providers = from_environ(environ) + (from_toml(config_file) if config_file else [])
    seen: set[str] = set()
    for p in providers:
        if p.name in seen:
            raise ConfigurationError(f"OAuth provider {p.name!r} is configured twice.")
        seen.add(p.name)
    return providers
