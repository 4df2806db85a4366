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
# refresh-token checks: the run that fits .ci/run's time. The others run in
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
]

# Slow tests left out of the mutation run (each surviving mutant would pay for
# them): random garbage, a cache flood and a concurrency race, none of which
# pins a check that a faster unit test does not pin too.
DESELECT: tuple[str, ...] = (
    "tests/tokens/test_attacks.py::test_garbage_only_ever_raises_invalid_token",
    "tests/tokens/test_attacks.py::test_a_flood_of_distinct_tokens_cannot_grow_the_caches",
    "tests/tokens/test_keys.py::test_concurrent_load_or_create_yields_one_ring",
)
