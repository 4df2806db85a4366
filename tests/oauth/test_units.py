"""The pure parts: provider configuration, the sealed transaction, and the
identity store contract on every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gatepass.drivers import open_identity_store
from gatepass.errors import ConfigurationError
from gatepass.oauth.config import load_providers
from gatepass.oauth.identities import ExternalIdentity, IdentityLinked, IdentityStore
from gatepass.oauth.transaction import Transaction, TransactionSealer
from gatepass.server.settings import Settings

# -- configuration ------------------------------------------------------------


def test_environment_configuration() -> None:
    env = {
        "GATEPASS_OAUTH_PROVIDERS": "google, corp",
        "GATEPASS_OAUTH_GOOGLE_KIND": "google",
        "GATEPASS_OAUTH_GOOGLE_CLIENT_ID": "g-id",
        "GATEPASS_OAUTH_GOOGLE_CLIENT_SECRET": "g-secret",
        "GATEPASS_OAUTH_CORP_ISSUER": "https://login.example.com",
        "GATEPASS_OAUTH_CORP_CLIENT_ID": "c-id",
        "GATEPASS_OAUTH_CORP_X_CLIENT_ID": "not corp's",
    }
    google, corp = load_providers(env)
    assert (google.kind, google.issuer, google.title) == (
        "google",
        "https://accounts.google.com",
        "Google",
    )
    assert google.redirect_uri("https://auth.example.com/") == (
        "https://auth.example.com/auth/oauth/google/callback"
    )
    assert (corp.kind, corp.client_id, corp.client_secret) == ("oidc", "c-id", "")
    assert "g-secret" not in repr(google)
    assert "g-secret" not in repr(Settings.load(environ=env))


def test_toml_configuration(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(
        '[providers.github]\nkind = "github"\nclient_id = "gh"\nclient_secret = "s"\n'
        '[providers.corp]\nissuer = "https://login.example.com"\nclient_id = "c"\n'
        'scopes = ["openid", "email"]\ntrust_email = true\n'
    )
    github, corp = load_providers({}, str(path))
    assert github.issuer == "https://github.com" and github.scopes == ("read:user", "user:email")
    assert corp.trust_email and corp.scopes == ("openid", "email")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEPASS_OAUTH_X_ISSUER": "https://a.example"}, "CLIENT_ID is required"),
        ({"GATEPASS_OAUTH_X_CLIENT_ID": "c"}, "ISSUER is required"),
        ({"GATEPASS_OAUTH_X_CLIENT_ID": "c",
          "GATEPASS_OAUTH_X_ISSUER": "http://a.example"}, "https"),
        ({"GATEPASS_OAUTH_X_CLIENT_ID": "c", "GATEPASS_OAUTH_X_KIND": "myspace"}, "KIND"),
        ({"GATEPASS_OAUTH_X_CLIENT_ID": "c", "GATEPASS_OAUTH_X_ISSUER": "https://a.example",
          "GATEPASS_OAUTH_X_SCOPES": "email"}, "openid"),
    ],
)  # fmt: skip
def test_configuration_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_providers({"GATEPASS_OAUTH_PROVIDERS": "x", **env})


# -- the sealed transaction ------------------------------------------------------


def test_transaction_is_sealed_tamper_proof_and_short_lived() -> None:
    now = time.time()
    sealer = TransactionSealer([b"k" * 32])
    tx = Transaction.begin("node", "/account", None, now=now)
    sealed = sealer.seal(tx)
    for secret in (tx.state, tx.nonce, tx.verifier):
        assert secret not in sealed
    assert sealer.open(sealed, now=now) == tx
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert sealer.open(flipped, now=now) is None
    assert sealer.open(sealed, now=tx.expires_at) is None
    assert TransactionSealer([b"other" * 8]).open(sealed, now=now) is None
    # Rotation: the old secret still opens what it sealed.
    assert TransactionSealer([b"new" * 11, b"k" * 32]).open(sealed, now=now) == tx
    assert sealer.open("x" * 5000, now=now) is None


# -- identity store contract -------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres", "mongodb"])
def identity_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ids.db'}"
    # mongodb: the nx-27017 wire-protocol emulator (see docs/storage.md).
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def identities(identity_url: str) -> AsyncIterator[IdentityStore]:
    store = await open_identity_store(identity_url)
    try:
        yield store
    finally:
        await store.close()


async def test_identity_store_contract(identities: IdentityStore) -> None:
    ada = ExternalIdentity(
        "https://idp.example", "sub-1", "user-ada", "corp", "ada@example.com", 1.0
    )
    assert await identities.get("https://idp.example", "sub-1") is None
    await identities.add(ada)
    assert await identities.get("https://idp.example", "sub-1") == ada
    # (issuer, subject) is unique: a second link loses, whoever asks.
    with pytest.raises(IdentityLinked):
        await identities.add(replace(ada, user_id="user-eve"))
    # The same subject at another issuer is another identity.
    other = replace(ada, issuer="https://other.example", email=None, created_at=2.0)
    await identities.add(other)
    assert await identities.list_user("user-ada") == [ada, other]
    assert not await identities.remove("https://idp.example", "sub-1", "user-eve")
    assert await identities.remove("https://idp.example", "sub-1", "user-ada")
    assert await identities.get("https://idp.example", "sub-1") is None
    await identities.ping()


async def test_identity_user_ids_are_strings(identities: IdentityStore) -> None:
    ada = ExternalIdentity("https://idp.example", "sub-9", "42", "corp", None, 1.0)
    with pytest.raises(TypeError):
        await identities.add(replace(ada, user_id=42))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await identities.list_user(42)  # type: ignore[arg-type]
    await identities.add(ada)
    assert await identities.list_user("42") == [ada]
    assert await identities.list_user("0042") == []
    assert not await identities.remove("https://idp.example", "sub-9", "0042")
