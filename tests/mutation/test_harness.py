"""The gate's own logic: names, diff signatures, and when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutation.run import (
    Explanation,
    Mutant,
    in_scope,
    judge,
    load_explanations,
    mangle,
    signature,
    split_key,
)
from tests.mutation.targets import TARGETS, Target

DIFF = """--- src/gatepass/csrf.py
+++ src/gatepass/csrf.py
@@ -1,3 +1,3 @@
 def verify(self, token, binding):
-    if not token or len(token) != 43:
+    if not token and len(token) != 43:
         return False"""

CSRF = Target("src/gatepass/csrf.py", ("tests/core/test_csrf.py",))


def mutant(status: str, n: int = 1, diff: str = DIFF) -> Mutant:
    return Mutant(f"gatepass.csrf.xǁCSRFSignerǁverify__mutmut_{n}", "gatepass.csrf",
                  "CSRFSigner.verify", status, diff)  # fmt: skip


def explanation(diff: str = DIFF) -> Explanation:
    return Explanation("gatepass.csrf", "CSRFSigner.verify", signature(diff), "equivalent", "x")


def test_mutmut_names_split_into_module_and_function() -> None:
    assert split_key("gatepass.csrf.xǁCSRFSignerǁverify__mutmut_12") == (
        "gatepass.csrf", "CSRFSigner.verify")  # fmt: skip
    assert split_key("gatepass.tokens.jws.x__too_deep__mutmut_3") == (
        "gatepass.tokens.jws", "_too_deep")  # fmt: skip
    assert mangle("gatepass.csrf", "CSRFSigner.verify") == "gatepass.csrf.xǁCSRFSignerǁverify*"
    assert mangle("gatepass.csrf", "origin_of") == "gatepass.csrf.x_origin_of*"
    assert mangle("gatepass.csrf", "*") == "gatepass.csrf.*"


def test_signature_ignores_indentation_and_context() -> None:
    assert signature(DIFF) == (
        "- if not token or len(token) != 43:\n+ if not token and len(token) != 43:"
    )
    assert signature(DIFF.replace("    if", "        if")) == signature(DIFF)


def test_scope_follows_the_function_globs() -> None:
    narrow = [Target("src/gatepass/tokens/refresh.py", (), functions=("parse",))]
    assert in_scope("gatepass.tokens.refresh.x_parse__mutmut_1", narrow)
    assert not in_scope("gatepass.tokens.refresh.x_new_token__mutmut_1", narrow)
    assert not in_scope("gatepass.csrf.x_origin_of__mutmut_1", narrow)


def test_gate_passes_with_a_high_score_and_explained_survivors() -> None:
    mutants = [mutant("killed", n) for n in range(40)] + [mutant("survived", 99)]
    verdict = judge(mutants, [explanation()], [CSRF])
    assert verdict.score == pytest.approx(100 * 40 / 41)
    assert verdict.passed
    assert [m.key for m, _ in verdict.explained] == [mutants[-1].key]


def test_gate_fails_on_an_unexplained_survivor() -> None:
    other = DIFF.replace("and len", "or len(token) >")
    mutants = [mutant("killed", n) for n in range(100)] + [mutant("survived", 99, other)]
    verdict = judge(mutants, [explanation()], [CSRF])
    assert verdict.score > 99
    assert not verdict.passed
    assert verdict.unexplained == [mutants[-1]]
    assert verdict.stale == [explanation()]  # the entry matched nothing


def test_gate_fails_below_the_threshold_even_if_everything_is_explained() -> None:
    mutants = [mutant("killed", n) for n in range(18)] + [mutant("survived", 99)] * 2
    verdict = judge(mutants, [explanation()], [CSRF])
    assert verdict.score == 90
    assert not verdict.unexplained
    assert not verdict.passed


@pytest.mark.parametrize("status", ["no tests", "not checked", "suspicious"])
def test_an_unrun_mutant_cannot_be_explained_away(status: str) -> None:
    verdict = judge([mutant(status)], [explanation()], [CSRF])
    assert verdict.unexplained and not verdict.passed


def test_timeouts_count_as_killed() -> None:
    assert judge([mutant("timeout")], [], [CSRF]).passed


def test_the_survivor_list_parses_and_every_entry_names_a_target() -> None:
    modules = {t.module for t in TARGETS}
    for entry in load_explanations():
        assert entry.module in modules
        assert entry.diff.startswith("- ") and "\n+ " in entry.diff
        assert entry.reason.strip()


def test_a_survivor_entry_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[survivor]]\nmodule="m"\nfunction="f"\ndiff="- a\\n+ b"\n'
                    'kind="equivalent"\nreason=" "\n')  # fmt: skip
    with pytest.raises(ValueError):
        load_explanations(path)
    path.write_text(path.read_text().replace("equivalent", "fine").replace('" "', '"r"'))
    with pytest.raises(ValueError):
        load_explanations(path)


def test_every_target_names_files_that_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    for target in TARGETS:
        assert (root / target.path).is_file(), target.path
        for test in target.tests:
            assert (root / test.split("::")[0]).is_file(), test


def test_under_mutation_backend_suites_run_on_memory_only() -> None:
    from types import SimpleNamespace

    from tests.mutation.plugin import pytest_collection_modifyitems

    def item(backend: str | None) -> SimpleNamespace:
        params = {} if backend is None else {"backend_name": backend}
        return SimpleNamespace(name=backend, callspec=SimpleNamespace(params=params))

    plain = SimpleNamespace(name="plain")  # not parametrised at all
    items = [item("memory"), item("redis"), plain, item(None), item("postgres")]
    dropped: list[object] = []
    config = SimpleNamespace(
        hook=SimpleNamespace(pytest_deselected=lambda items: dropped.extend(items))
    )
    pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["memory", "plain", None]
    assert [i.name for i in dropped] == ["redis", "postgres"]  # type: ignore[attr-defined]
