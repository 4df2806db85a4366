"""pytest plugin loaded only by the mutation run (``-p tests.mutation.plugin``).

A mutant's verdict must not depend on luck or on the order mutants ran in:
Hypothesis draws the same examples every time (derandomize), keeps no example
database between runs (a failure found on one mutant would otherwise be
replayed on the next, depending on scheduling), and has no deadline (two
workers on two cores make timings noisy, and a deadline error is a false kill).
Property tests without their own ``max_examples`` draw 25 examples, not 100:
they run once per mutant, and the unit tests, not the draws, must do the killing.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile(
    "mutation", derandomize=True, database=None, deadline=None, max_examples=25
)
settings.load_profile("mutation")


def pytest_runtest_setup() -> None:
    # mutmut forks each mutant's run from a process that has already run the
    # tests once: the JWS header cache would answer from headers parsed by
    # the original code, and a mutant of the header checks would never run.
    from gatepass.tokens import jws

    jws.clear_header_cache()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The service suites (MFA, one-time tokens) run on every store backend;
    # under mutation only on the memory one: the mutated checks sit above the
    # store, every backend would give the same verdict, and the store
    # contracts are suites of their own, not this run's business.
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend_name") if callspec is not None else None
        (dropped if backend not in (None, "memory") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
