"""Second factors: enrolment, verification and the two-step sign-in.

The rules live here once, whatever the entry point (JSON API, CLI, later the
pages):

* a TOTP code is accepted once: the store records the step it belongs to and
  refuses that step and every earlier one afterwards;
* every code check (confirm, second step, re-authentication) is throttled per
  account and per client address by :class:`~gatepass.throttle.LoginThrottle`
  in its ``mfa`` namespace, before the code is looked at;
* an ``mfa_token`` is 256 random bits, stored as its SHA-256, bound to the
  first step's client (:func:`client_binding`), single-use, dead after
  :attr:`MFAService.challenge_ttl` seconds or :data:`~.store.MAX_ATTEMPTS`
  attempts, whatever they were.

No secret, code or token ever reaches a log line or an exception message.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gatepass.errors import Conflict, InvalidCode, InvalidMFAToken, InvalidRequest
from gatepass.mfa import totp
from gatepass.mfa.crypto import SecretBox, SecretUnreadable
from gatepass.mfa.store import MAX_ATTEMPTS, Challenge, Factors, FactorStore
from gatepass.throttle import LoginThrottle

if TYPE_CHECKING:
    from gatepass.passkeys.service import PasskeyService

logger = logging.getLogger("gatepass.mfa")

#: ``amr`` values (RFC 8176): what each factor adds to a login.
AMR_PASSWORD = "pwd"  # noqa: S105  # an RFC 8176 name, not a password
AMR_OTP = "otp"
#: A recovery code is a one-time password too; "mfa" marks the second factor.
AMR_MFA = "mfa"
MAX_CODE_LENGTH = 64


def client_binding(ip: str | None, user_agent: str | None) -> str:
    """What an mfa_token is bound to: its first step's client address and user agent.

    Why not a cookie: ``POST /auth/token`` clients (scripts, mobile apps) keep
    no cookies, and one rule for both first steps keeps one set of tests.
    The address is the one :class:`~gatepass.clientip.TrustedProxies`
    settled (a spoofed ``X-Forwarded-For`` does not move it), so a token
    stolen from a log or a screen is useless from anywhere else; the price
    is that a client changing networks within the 5 minutes starts again.
    """
    text = "\x00".join(("gatepass-mfa-client-v1", ip or "", (user_agent or "")[:512]))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True, slots=True)
class Passed:
    """A finished second step: the challenge and how the user proved it."""

    challenge: Challenge
    amr: tuple[str, ...]


@dataclass
class MFAService:
    store: FactorStore
    box: SecretBox
    #: Counts wrong codes per account and address (namespace "mfa").
    throttle: LoginThrottle | None = None
    #: The issuer shown in authenticator apps.
    issuer: str = "gatepass"
    challenge_ttl: float = 300.0
    max_attempts: int = MAX_ATTEMPTS
    clock: Callable[[], float] = field(default=time.time)
    #: Passkeys, a second factor too (and a way in on their own).
    passkeys: PasskeyService | None = None

    async def factors(self, user_id: str) -> Factors:
        return await self.store.get(user_id)

    async def methods(self, user_id: str) -> tuple[str, ...]:
        """What the second step accepts for the user; empty: no second step."""
        methods = (await self.store.get(user_id)).methods
        if self.passkeys is not None and await self.passkeys.count(user_id):
            methods = (*methods, "passkey")
        return methods

    # -- enrolment ---------------------------------------------------------

    async def begin_totp(self, user_id: str, account: str) -> TotpSetup:
        """A fresh pending secret (replacing an unconfirmed one).  TOTP already on: 409."""
        if (await self.store.get(user_id)).totp_enabled:
            raise Conflict("TOTP is already on; turn it off first.")
        secret = totp.new_secret()
        await self.store.begin_totp(user_id, self.box.seal(secret, user_id=user_id))
        return TotpSetup(secret, totp.provisioning_uri(secret, account=account, issuer=self.issuer))

    async def pending_uri(self, user_id: str, account: str) -> str | None:
        """The otpauth URI of the setup in progress (for the QR code), if any."""
        setup = await self.pending_setup(user_id, account)
        return setup.otpauth_uri if setup is not None else None

    async def pending_setup(self, user_id: str, account: str) -> TotpSetup | None:
        """The secret and otpauth URI of the setup in progress, if any (the
        enrolment page shows both; reading it changes nothing)."""
        factors = await self.store.get(user_id)
        if factors.totp_pending is None:
            return None
        secret = self._open(factors.totp_pending, user_id)
        return TotpSetup(secret, totp.provisioning_uri(secret, account=account, issuer=self.issuer))

    async def confirm_totp(self, user_id: str, code: str, *, ip: str | None) -> list[str]:
        """Turn TOTP on with a code from the pending secret; the new recovery codes."""
        factors = await self.store.get(user_id)
        if factors.totp_pending is None:
            raise Conflict("There is no TOTP setup to confirm; start one first.")
        await self._check_throttle(user_id, ip)
        secret = self._open(factors.totp_pending, user_id)
        step = totp.matching_step(secret, _code(code), now=self.clock())
        if step is None:
            await self._failed(user_id, ip)
            raise InvalidCode()
        codes = totp.new_recovery_codes()
        hashes = [totp.recovery_hash(c.replace("-", "")) for c in codes]
        if not await self.store.enable_totp(user_id, factors.totp_pending, step, hashes):
            # Another setup replaced the pending secret meanwhile.
            raise InvalidCode()
        await self._succeeded(user_id, ip)
        logger.info("totp enabled (user %s)", user_id)
        return codes

    async def disable_totp(self, user_id: str) -> bool:
        done = await self.store.disable_totp(user_id)
        if done:
            logger.info("totp disabled (user %s)", user_id)
        return done

    async def regenerate_recovery_codes(self, user_id: str) -> list[str]:
        if not (await self.store.get(user_id)).totp_enabled:
            raise Conflict("Recovery codes need a second factor; turn TOTP on first.")
        codes = totp.new_recovery_codes()
        hashes = [totp.recovery_hash(c.replace("-", "")) for c in codes]
        await self.store.replace_recovery_codes(user_id, hashes)
        logger.info("recovery codes regenerated (user %s)", user_id)
        return codes

    async def reset(self, user_id: str) -> bool:
        """Remove every factor, passkeys included (admin)."""
        removed = await self.store.reset(user_id)
        if self.passkeys is not None and await self.passkeys.reset(user_id):
            removed = True
        return removed

    # -- verification ------------------------------------------------------

    async def verify_code(self, user_id: str, code: str, *, ip: str | None) -> tuple[str, ...]:
        """Check a TOTP or recovery code and spend it; its ``amr``.  InvalidCode otherwise.

        Throttled per account and address; each code works once.
        """
        await self._check_throttle(user_id, ip)
        amr = await self._spend(user_id, _code(code))
        if amr is None:
            await self._failed(user_id, ip)
            raise InvalidCode()
        await self._succeeded(user_id, ip)
        return amr

    async def _spend(self, user_id: str, code: str) -> tuple[str, ...] | None:
        factors = await self.store.get(user_id)
        if factors.totp_secret is None:
            return None
        if totp.is_code_shaped(code):
            secret = self._open(factors.totp_secret, user_id)
            step = totp.matching_step(secret, code, now=self.clock())
            if step is None or not await self.store.use_totp_step(user_id, step):
                return None
            if self.box.needs_reseal(factors.totp_secret):
                await self.store.reseal(
                    user_id, factors.totp_secret, self.box.seal(secret, user_id=user_id)
                )
            return (AMR_OTP,)
        normalized = totp.normalize_recovery_code(code)
        if normalized is None:
            return None
        if not await self.store.use_recovery_code(user_id, totp.recovery_hash(normalized)):
            return None
        logger.info("recovery code used (user %s)", user_id)
        return (AMR_OTP, AMR_MFA)

    # -- the two-step sign-in ----------------------------------------------

    async def start_challenge(
        self, user_id: str, *, kind: str, client: str, data: dict[str, Any]
    ) -> str:
        """A new mfa_token for a first step that passed; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        await self.store.create_challenge(
            Challenge(
                token_hash=token_hash(token),
                user_id=user_id,
                kind=kind,
                client=client,
                created_at=now,
                expires_at=now + self.challenge_ttl,
                data=data,
            )
        )
        return token

    async def attempt(self, token: str, *, client: str) -> Challenge:
        """Count an attempt on the challenge behind ``token``; InvalidMFAToken when it
        is unknown, used, expired, void, or presented by another client."""
        if not isinstance(token, str) or not 20 <= len(token) <= 128:
            raise InvalidMFAToken()
        challenge = await self.store.attempt_challenge(
            token_hash(token), now=self.clock(), limit=self.max_attempts
        )
        if challenge is None:
            raise InvalidMFAToken()
        if not secrets.compare_digest(challenge.client, client):
            logger.warning("mfa_token presented by another client (user %s)", challenge.user_id)
            raise InvalidMFAToken()
        return challenge

    async def finish(self, token: str, challenge: Challenge, code: str, *,
                     ip: str | None) -> Passed:  # fmt: skip
        """Check the code for a challenge that :meth:`attempt` let through, then take
        the challenge (single use)."""
        amr = await self.verify_code(challenge.user_id, code, ip=ip)
        if not await self.store.take_challenge(token_hash(token)):
            raise InvalidMFAToken()  # used by a concurrent request
        first = tuple(str(a) for a in challenge.data.get("amr", [AMR_PASSWORD]))
        return Passed(challenge, tuple(dict.fromkeys((*first, *amr))))

    async def passkey_options(self, token: str, challenge: Challenge) -> dict[str, Any]:
        """Options for answering the challenge behind ``token`` with a passkey."""
        return await self._passkeys().second_factor_options(
            challenge.user_id, binding=_passkey_binding(token, challenge)
        )

    async def finish_with_passkey(
        self, token: str, challenge: Challenge, credential: object
    ) -> Passed:
        """:meth:`finish` with a passkey assertion instead of a code."""
        asserted = await self._passkeys().second_factor(
            challenge.user_id, credential, binding=_passkey_binding(token, challenge)
        )
        if not await self.store.take_challenge(token_hash(token)):
            raise InvalidMFAToken()  # used by a concurrent request
        first = tuple(str(a) for a in challenge.data.get("amr", [AMR_PASSWORD]))
        return Passed(challenge, tuple(dict.fromkeys((*first, *asserted.amr, AMR_MFA))))

    def _passkeys(self) -> PasskeyService:
        if self.passkeys is None:
            raise InvalidRequest("Passkeys are not available here.")
        return self.passkeys

    # -- helpers -----------------------------------------------------------

    def _open(self, sealed: str, user_id: str) -> str:
        try:
            return self.box.open(sealed, user_id=user_id)
        except SecretUnreadable:
            # A server secret was dropped too early, or the row was tampered
            # with: an operator's problem, never the user's code being wrong.
            logger.error("a TOTP secret cannot be opened with the configured keys (user %s)",
                         user_id)  # fmt: skip
            raise

    async def _check_throttle(self, user_id: str, ip: str | None) -> None:
        if self.throttle is not None:
            await self.throttle.check(user_id, ip)

    async def _failed(self, user_id: str, ip: str | None) -> None:
        if self.throttle is not None:
            await self.throttle.failure(user_id, ip)

    async def _succeeded(self, user_id: str, ip: str | None) -> None:
        if self.throttle is not None:
            await self.throttle.success(user_id, ip)


def _passkey_binding(token: str, challenge: Challenge) -> str:
    """A second-factor passkey challenge is bound to the client and to this mfa_token."""
    return f"{challenge.client}:{token_hash(token)}"


def _code(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_CODE_LENGTH:
        raise InvalidRequest("The field 'code' must be a short non-empty string.")
    return value.strip()
