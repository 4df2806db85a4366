"""Passkey ceremonies: registration, and assertions for a sign-in with a
passkey alone or as the second factor.

The WebAuthn checks themselves are py_webauthn's (origin, RP ID, challenge,
type, user presence and, when asked, verification, the signature); the
rules around them live here once:

* **Challenges** are 256 random bits kept in the one-time token store (the
  store reset and verification links use, so any instance can finish a
  ceremony another began): only their SHA-256, with a purpose per ceremony,
  the client binding of :func:`~gatepass.mfa.service.client_binding` (for
  the second factor also the mfa_token's hash), and a 5-minute expiry.
  Finishing takes the challenge first, so it works once, whatever the
  outcome.
* **The counter**: after the signature verified, a counter that did not move
  forward (while either side counts) is refused and logged as a possible
  clone; the store then records the new counter only if it is still the
  one checked (:meth:`~gatepass.passkeys.store.PasskeyStore.record_use`).
* **User verification**: required for a sign-in with a passkey alone, user
  presence enough for the second factor.
* A credential belongs to one user: the user handle an assertion names must
  be its owner, and the second factor only accepts the challenge's user's.

``amr`` (RFC 8176): "hwk" for a device-bound credential, "swk" for one the
authenticator may sync (backup eligible), "user" when the user was
verified, and "mfa" when the passkey was a factor of its own beside
another (a verified passkey alone is possession plus PIN or biometrics).

No key, challenge or assertion reaches a log line or an exception message;
credentials are logged by a short hash of their id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gatepass.errors import Conflict, InvalidPasskey, InvalidRequest, NotFound, PasskeyRejected
from gatepass.onetime.store import OneTimeTokenStore
from gatepass.passkeys.store import (
    MAX_NAME_LENGTH,
    MAX_PASSKEYS,
    Passkey,
    PasskeyStore,
    public_id,
)

logger = logging.getLogger("gatepass.passkeys")

PURPOSE_REGISTER = "passkey-register"
PURPOSE_LOGIN = "passkey-login"
PURPOSE_MFA = "passkey-mfa"

AMR_HARDWARE_KEY = "hwk"
AMR_SOFTWARE_KEY = "swk"
AMR_USER = "user"
AMR_MFA = "mfa"

#: What a challenge looks like in clientDataJSON: 32 bytes, base64url.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
#: Credential ids: base64url, at most 1023 bytes (WebAuthn's limit).
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{16,1364}")
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def credential_tag(credential_id: str) -> str:
    """How logs name a credential: its public id, never the credential id."""
    return public_id(credential_id)


def _hash(challenge: str) -> str:
    return hashlib.sha256(challenge.encode("ascii")).hexdigest()


def _malformed() -> InvalidRequest:
    return InvalidRequest("The field 'credential' must be a WebAuthn credential (JSON).")


def credential_id_of(credential: object) -> str:
    if not isinstance(credential, dict):
        raise _malformed()
    raw = credential.get("rawId")
    if not isinstance(raw, str) or not _CREDENTIAL_ID.fullmatch(raw):
        raise _malformed()
    return raw


def challenge_of(credential: object) -> str:
    """The challenge a credential's clientDataJSON answers (shape-checked only)."""
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise _malformed()
    client_data = credential["response"].get("clientDataJSON")
    if not isinstance(client_data, str) or len(client_data) > 4096:
        raise _malformed()
    try:
        parsed = json.loads(unb64url(client_data))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise _malformed() from None
    challenge = parsed.get("challenge") if isinstance(parsed, dict) else None
    if not isinstance(challenge, str) or not _CHALLENGE.fullmatch(challenge):
        # Not one of ours: no store lookup for it.
        raise InvalidPasskey()
    return challenge


def passkey_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("The field 'name' must be a non-empty string.")
    name = " ".join(value.split())
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidRequest(f"A passkey name is at most {MAX_NAME_LENGTH} printable characters.")
    return name


@dataclass(frozen=True, slots=True)
class Asserted:
    """A passkey assertion that verified: whose, which and how."""

    user_id: str
    passkey: Passkey
    user_verified: bool

    @property
    def amr(self) -> tuple[str, ...]:
        key = AMR_SOFTWARE_KEY if self.passkey.backup_eligible else AMR_HARDWARE_KEY
        return (key, AMR_USER) if self.user_verified else (key,)


@dataclass
class PasskeyService:
    store: PasskeyStore
    #: Where ceremonies' challenges wait (any instance can finish one).
    challenges: OneTimeTokenStore
    #: The RP ID: the host of GATEPASS_PUBLIC_URL.
    rp_id: str
    #: The one origin assertions may come from: GATEPASS_PUBLIC_URL's.
    origin: str
    rp_name: str = "gatepass"
    challenge_ttl: float = 300.0
    clock: Callable[[], float] = field(default=time.time)

    async def passkeys(self, user_id: str) -> list[Passkey]:
        return await self.store.list_user(user_id)

    async def count(self, user_id: str) -> int:
        return len(await self.store.list_user(user_id))

    # -- challenges ----------------------------------------------------------

    async def _new_challenge(self, purpose: str, user_id: str, binding: str) -> bytes:
        challenge = secrets.token_bytes(32)
        await self.challenges.put(
            _hash(b64url(challenge)), purpose=purpose, user_id=user_id, data=binding,
            expires_at=self.clock() + self.challenge_ttl,
        )  # fmt: skip
        return challenge

    async def _take_challenge(
        self, credential: object, purpose: str, binding: str
    ) -> tuple[str, bytes]:
        """The user and challenge of the ceremony ``credential`` answers, taken
        (single use); InvalidPasskey when unknown, used, expired or not bound
        to ``binding``."""
        challenge = challenge_of(credential)
        grant = await self.challenges.take(_hash(challenge), purpose=purpose, now=self.clock())
        if grant is None:
            raise InvalidPasskey()
        if not secrets.compare_digest(grant.data, binding):
            logger.warning("passkey challenge presented by another client (%s)", purpose)
            raise InvalidPasskey()
        return grant.user_id, unb64url(challenge)

    # -- registration --------------------------------------------------------

    async def registration_options(
        self, user_id: str, user_name: str, *, client: str
    ) -> dict[str, Any]:
        existing = await self.store.list_user(user_id)
        if len(existing) >= MAX_PASSKEYS:
            raise Conflict(f"An account has at most {MAX_PASSKEYS} passkeys; remove one first.")
        challenge = await self._new_challenge(PURPOSE_REGISTER, user_id, client)
        options = generate_registration_options(
            rp_id=self.rp_id, rp_name=self.rp_name, user_name=user_name,
            user_id=user_id.encode(), challenge=challenge,
            timeout=int(self.challenge_ttl * 1000),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(p) for p in existing],
        )  # fmt: skip
        result: dict[str, Any] = json.loads(options_to_json(options))
        return result

    async def register(self, user_id: str, credential: object, name: object, *,
                       client: str) -> Passkey:  # fmt: skip
        chosen = passkey_name(name)
        credential_id_of(credential)
        try:
            owner, challenge = await self._take_challenge(credential, PURPOSE_REGISTER, client)
        except InvalidPasskey:
            raise PasskeyRejected() from None
        if owner != user_id:
            logger.warning("passkey registration challenge of another user (user %s)", user_id)
            raise PasskeyRejected()
        try:
            verified = verify_registration_response(
                credential=credential,  # type: ignore[arg-type]
                expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, require_user_presence=True,
            )  # fmt: skip
        except WebAuthnException as exc:
            logger.info("passkey registration refused (user %s): %s", user_id, type(exc).__name__)
            raise PasskeyRejected() from None
        except (ValueError, TypeError, KeyError):
            raise _malformed() from None
        response = credential["response"]  # type: ignore[index]
        transports = response.get("transports") if isinstance(response, dict) else None
        passkey = Passkey(
            credential_id=b64url(verified.credential_id), user_id=user_id,
            public_key=b64url(verified.credential_public_key), sign_count=verified.sign_count,
            name=chosen, created_at=self.clock(),
            transports=tuple(sorted({t for t in transports if t in _TRANSPORTS}))
            if isinstance(transports, list) else (),
            backup_eligible=verified.credential_device_type
            == CredentialDeviceType.MULTI_DEVICE,
        )  # fmt: skip
        if len(await self.store.list_user(user_id)) >= MAX_PASSKEYS:
            raise Conflict(f"An account has at most {MAX_PASSKEYS} passkeys; remove one first.")
        if not await self.store.add(passkey):
            raise Conflict("This passkey is already registered.")
        logger.info("passkey registered (user %s, %s)", user_id,
                    credential_tag(passkey.credential_id))  # fmt: skip
        return passkey

    # -- assertions ----------------------------------------------------------

    async def login_options(self, *, client: str) -> dict[str, Any]:
        """Options for a sign-in with a passkey alone (a discoverable credential:
        no list of credentials, user verification required)."""
        challenge = await self._new_challenge(PURPOSE_LOGIN, "", client)
        return self._request_options(challenge, [], UserVerificationRequirement.REQUIRED)

    async def second_factor_options(self, user_id: str, *, binding: str) -> dict[str, Any]:
        """Options for the second factor of ``user_id``'s sign-in: their passkeys."""
        passkeys = await self.store.list_user(user_id)
        if not passkeys:
            raise NotFound("This account has no passkey.")
        challenge = await self._new_challenge(PURPOSE_MFA, user_id, binding)
        return self._request_options(challenge, passkeys, UserVerificationRequirement.PREFERRED)

    def _request_options(
        self, challenge: bytes, passkeys: list[Passkey], uv: UserVerificationRequirement
    ) -> dict[str, Any]:
        options = generate_authentication_options(
            rp_id=self.rp_id, challenge=challenge, timeout=int(self.challenge_ttl * 1000),
            allow_credentials=[_descriptor(p) for p in passkeys], user_verification=uv,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(options_to_json(options))
        return result

    async def sign_in(self, credential: object, *, client: str) -> Asserted:
        """Verify an assertion for a sign-in with a passkey alone (UV required)."""
        credential_id_of(credential)
        _, challenge = await self._take_challenge(credential, PURPOSE_LOGIN, client)
        return await self._verify(credential, challenge, user_id=None, require_uv=True)

    async def second_factor(self, user_id: str, credential: object, *,
                            binding: str) -> Asserted:  # fmt: skip
        """Verify an assertion as ``user_id``'s second factor (UP enough)."""
        credential_id_of(credential)
        # The binding names the mfa_token, so the challenge is this user's.
        _, challenge = await self._take_challenge(credential, PURPOSE_MFA, binding)
        return await self._verify(credential, challenge, user_id=user_id, require_uv=False)

    async def _verify(self, credential: object, challenge: bytes, *, user_id: str | None,
                      require_uv: bool) -> Asserted:  # fmt: skip
        credential_id = credential_id_of(credential)
        passkey = await self.store.get(credential_id)
        if passkey is None:
            logger.info("passkey assertion with an unknown credential")
            raise InvalidPasskey()
        if user_id is not None and passkey.user_id != user_id:
            logger.warning("passkey of another user offered (user %s)", user_id)
            raise InvalidPasskey()
        response = credential["response"]  # type: ignore[index]
        handle = response.get("userHandle")
        if handle is not None and (
            not isinstance(handle, str) or _unb64_or_none(handle) != passkey.user_id.encode()
        ):
            logger.warning("passkey assertion names another user (user %s, %s)",
                           passkey.user_id, credential_tag(credential_id))  # fmt: skip
            raise InvalidPasskey()
        try:
            verified = verify_authentication_response(
                credential=credential,  # type: ignore[arg-type]
                expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, credential_public_key=unb64url(passkey.public_key),
                # The counter is checked below, after the signature, so that a
                # regression is told apart from a forgery in the log.
                credential_current_sign_count=0, require_user_verification=require_uv,
            )  # fmt: skip
        except WebAuthnException as exc:
            logger.info("passkey assertion refused (user %s, %s): %s", passkey.user_id,
                        credential_tag(credential_id), type(exc).__name__)  # fmt: skip
            raise InvalidPasskey() from None
        except (ValueError, TypeError, KeyError):
            raise _malformed() from None
        new = verified.new_sign_count
        if (new > 0 or passkey.sign_count > 0) and new <= passkey.sign_count:
            logger.warning(
                "passkey signature counter did not advance (%d after %d): possibly a cloned "
                "authenticator; refused (user %s, %s)", new, passkey.sign_count,
                passkey.user_id, credential_tag(credential_id),
            )  # fmt: skip
            raise InvalidPasskey()
        if not await self.store.record_use(
            credential_id, seen_count=passkey.sign_count, new_count=new, now=self.clock()
        ):
            # Another assertion with the same counter won, or the passkey went.
            raise InvalidPasskey()
        return Asserted(passkey.user_id, passkey, verified.user_verified)

    # -- management ----------------------------------------------------------

    async def find(self, user_id: str, passkey_id: str) -> Passkey:
        """The user's passkey with this public id (:attr:`Passkey.id`); NotFound
        otherwise (another user's is not found either)."""
        for passkey in await self.store.list_user(user_id):
            if secrets.compare_digest(passkey.id, passkey_id):
                return passkey
        raise NotFound("There is no such passkey.")

    async def rename(self, user_id: str, passkey_id: str, name: object) -> Passkey:
        # Whose passkey first: another user's (or a made-up) id is 404
        # whatever the name.
        found = await self.find(user_id, passkey_id)
        chosen = passkey_name(name)
        if not await self.store.rename(user_id, found.credential_id, chosen):
            raise NotFound("There is no such passkey.")
        return found.with_name(chosen)

    async def remove(self, user_id: str, passkey_id: str) -> None:
        found = await self.find(user_id, passkey_id)
        if not await self.store.remove(user_id, found.credential_id):
            raise NotFound("There is no such passkey.")
        logger.info("passkey removed (user %s, %s)", user_id, found.id)

    async def reset(self, user_id: str) -> int:
        return await self.store.remove_user(user_id)


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(
        id=unb64url(passkey.credential_id),
        transports=[AuthenticatorTransport(t) for t in passkey.transports],
    )


def _unb64_or_none(text: str) -> bytes | None:
    try:
        return unb64url(text)
    except (ValueError, binascii.Error):
        return None
