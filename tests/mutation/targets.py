"""What the mutation run covers: the security core, module by module.

Every module that checks a credential, token, proof, origin, redirect or
header belongs here, with the unit tests that cover it (only those: the run
executes them once per mutant, so slow or service-bound suites stay out).

To add a module, append a :class:`Target`.  ``functions`` narrows the run to
the checking functions of a module that also holds other code (globs over
``Class.method`` / ``function`` names); ``ci`` puts the module in the subset
that ``.ci/run`` gates on (keep that subset under five minutes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    path: str  # the source file, relative to the repository
    tests: tuple[str, ...]  # pytest paths (files or node ids) that cover it
    functions: tuple[str, ...] = ("*",)
    ci: bool = True

    @property
    def module(self) -> str:
        return self.path.removeprefix("src/").removesuffix(".py").replace("/", ".")


# The CI subset (ci=True) is the five modules issue 18 measured plus the
# refresh-token checks and the host-name checks: the run that fits .ci/run's time. The others run in
# the full, documented run (python -m tests.mutation).

# The fuzz, property and differential suites (tests/fuzz, test_jws_differential)
# stay out: each mutant would run them for a minute, and they hunt for crashes
# and disagreements rather than hold a check in place; the unit tests must.

TARGETS: list[Target] = [
    Target(
        "src/gatepass/csrf.py",
        ("tests/core/test_csrf.py", "tests/asgi/test_csrf.py"),
    ),
    Target("src/gatepass/cookies.py", ("tests/core/test_cookies.py",)),
    Target("src/gatepass/redirects.py", ("tests/core/test_redirects.py",)),
    Target("src/gatepass/users/emails.py", ("tests/users/test_emails.py",)),
    Target(
        "src/gatepass/tokens/jws.py",
        (
            "tests/tokens/test_attacks.py",
            "tests/tokens/test_jws_structure.py",
            "tests/tokens/test_access_boundaries.py",
        ),
    ),
    Target(
        "src/gatepass/tokens/access.py",
        (
            "tests/tokens/test_attacks.py",
            "tests/tokens/test_access_boundaries.py",
            "tests/tokens/test_keys.py",
        ),
        # The claim checks; issue() only builds what verify() then checks.
        functions=("AccessTokenCodec.verify", "AccessTokenCodec._check", "_timestamp"),
        ci=False,
    ),
    Target(
        "src/gatepass/tokens/refresh.py",
        ("tests/tokens_store/test_refresh_tokens.py", "tests/tokens_store/test_refresh_checks.py"),
        # The token-shape checks and the rotation rules; the store protocol has no code.
        functions=("_canonical", "is_family_id", "parse", "successor", "decide"),
    ),
    Target(
        "src/gatepass/asgi/csrf.py",
        (
            "tests/asgi/test_csrf.py",
            "tests/asgi/test_csrf_signals.py",
            "tests/asgi/test_csrf_check_unit.py",
        ),
        # The request checks; the cookie (re)issue around them is not a check,
        # and enforce_csrf (the token endpoint's hook) is covered by server tests.
        functions=(
            "CSRFMiddleware.check",
            "CSRFMiddleware.__call__",
            "_bearer",
            "_form_field",
            "binding_of",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/clientip.py",
        ("tests/throttle/test_clientip.py", "tests/throttle/test_clientip_parsing.py"),
        ci=False,
    ),
    # -- the checks later issues added (all ci=False: the full run) ------------
    Target(
        "src/gatepass/onetime/tokens.py",
        ("tests/onetime/test_store_contract.py", "tests/onetime/test_tokens.py"),
        ci=False,
    ),
    Target(
        "src/gatepass/mfa/totp.py",
        ("tests/mfa/test_totp.py", "tests/mfa/test_service.py"),
        # new_secret and provisioning_uri only hand pyotp's output on.
        functions=(
            "step_at",
            "code_at",
            "is_code_shaped",
            "matching_step",
            "new_recovery_codes",
            "normalize_recovery_code",
            "recovery_hash",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/mfa/crypto.py",
        ("tests/mfa/test_crypto.py", "tests/mfa/test_service.py"),
        ci=False,
    ),
    Target(
        "src/gatepass/mfa/service.py",
        (
            "tests/mfa/test_service.py",
            "tests/mfa/test_service_checks.py",
            "tests/passkeys/test_service.py",
        ),
        # The code, replay and mfa_token checks; enrolment plumbing, logging
        # and the throttle hooks are not checks of their own.
        functions=(
            "client_binding",
            "token_hash",
            "MFAService.confirm_totp",
            "MFAService.verify_code",
            "MFAService._spend",
            "MFAService.start_challenge",
            "MFAService.attempt",
            "MFAService.finish",
            "MFAService.finish_with_passkey",
            "_passkey_binding",
            "_code",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/passkeys/service.py",
        ("tests/passkeys/test_service.py",),
        # Challenge binding, ownership, UV/UP and the counter; the options
        # builders hand py_webauthn's output on.  The HTTP suite
        # (tests/passkeys/test_api.py) stays out: 0.4 s a test, per mutant.
        functions=(
            "credential_id_of",
            "challenge_of",
            "passkey_name",
            "Asserted.amr",
            "PasskeyService._new_challenge",
            "PasskeyService._take_challenge",
            "PasskeyService.register",
            "PasskeyService.sign_in",
            "PasskeyService.second_factor",
            "PasskeyService._verify",
            "PasskeyService.find",
            "_unb64_or_none",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/dbsc.py",
        ("tests/tokens/test_dbsc_proofs.py", "tests/tokens/test_dbsc_unit.py"),
        # Header parsing, proofs, the bound cookie and the challenge check;
        # the offer and instruction builders only format.
        functions=(
            "header_string",
            "is_session_id",
            "_b64",
            "_json",
            "_int_member",
            "load_jwk",
            "_verify",
            "verify_proof",
            "BoundCookies.*",
            "DeviceBinding.authorization",
            "DeviceBinding.issue",
            "DeviceBinding.take",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/forward_auth/rules.py",
        ("tests/forward_auth/test_rules.py", "tests/forward_auth/test_rules_unit.py"),
        ci=False,
    ),
    Target(
        "src/gatepass/forward_auth/original.py",
        (
            "tests/forward_auth/test_original_and_headers.py",
            "tests/forward_auth/test_original_unit.py",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/forward_auth/headers.py",
        (
            "tests/forward_auth/test_original_and_headers.py",
            "tests/forward_auth/test_original_unit.py",
        ),
        ci=False,
    ),
    Target(
        "src/gatepass/hostnames.py",
        (
            "tests/forward_auth/test_rules.py",
            "tests/forward_auth/test_original_and_headers.py",
            "tests/forward_auth/test_original_unit.py",
            "tests/forward_auth/test_hostnames.py",
        ),
        # In CI too: the host check behind redirects' `next`, and cheap (82
        # mutants, 10 s on two workers).
    ),
    Target("src/gatepass/tokens/scopes.py", ("tests/tokens/test_scopes.py",), ci=False),
]

# Slow tests left out of the mutation run (each surviving mutant would pay for
# them): random garbage, a cache flood and a concurrency race, none of which
# pins a check that a faster unit test does not pin too.
DESELECT: tuple[str, ...] = (
    "tests/tokens/test_attacks.py::test_garbage_only_ever_raises_invalid_token",
    "tests/tokens/test_attacks.py::test_a_flood_of_distinct_tokens_cannot_grow_the_caches",
    "tests/tokens/test_keys.py::test_concurrent_load_or_create_yields_one_ring",
)
