"""Run mutmut over the security core and judge the result.

``python -m tests.mutation`` runs every target of :mod:`tests.mutation.targets`;
``--ci`` only those marked ``ci``.  mutmut works in a scratch copy of the
repository (``build/mutation/``), so the worktree never holds its ``mutants/``
tree or a ``[tool.mutmut]`` section: the section is written here, from the
target list.  The run fails (exit 1) when

* the score (killed / all mutants in scope) is below :data:`THRESHOLD`, or
* a mutant survives that ``survivors.toml`` does not explain.

A survivor is matched on its module, its function and the lines the mutation
changed, never on mutmut's running number, which shifts whenever a function
gains or loses a mutable token.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.targets import DESELECT, TARGETS, Target

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SURVIVORS = HERE / "survivors.toml"
RESULTS = HERE / "RESULTS.md"
THRESHOLD = 95.0

# mutmut's verdicts: what counts as caught, and what does not count at all.
DETECTED = {"killed", "timeout", "segfault"}
NOT_APPLICABLE = {"skipped", "caught by type check"}


@dataclass(frozen=True)
class Mutant:
    key: str  # mutmut's name, e.g. gatepass.csrf.xǁCSRFSignerǁverify__mutmut_3
    module: str
    function: str  # "CSRFSigner.verify" or "origin_of"
    status: str
    diff: str

    @property
    def signature(self) -> str:
        return signature(self.diff)


@dataclass(frozen=True)
class Explanation:
    module: str
    function: str
    diff: str
    kind: str  # "equivalent" or "harmless"
    reason: str


def split_key(key: str) -> tuple[str, str]:
    """``(module, function)`` of a mutmut mutant name."""
    stem = key.rpartition("__mutmut_")[0]
    module, _, mangled = stem.rpartition(".")
    if mangled.startswith("xǁ"):
        return module, ".".join(mangled[2:].split("ǁ"))
    return module, mangled.removeprefix("x_")


def mangle(module: str, function: str) -> str:
    """The glob mutmut matches against both mutant and function names."""
    if function == "*":
        return f"{module}.*"
    if "." in function:
        return f"{module}.xǁ{function.replace('.', 'ǁ')}*"
    return f"{module}.x_{function}*"


def signature(diff: str) -> str:
    """The changed lines of a unified diff, without indentation: stable across edits."""
    changed = [
        f"{line[0]} {line[1:].strip()}"
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "\n".join(changed)


def load_explanations(path: Path = SURVIVORS) -> list[Explanation]:
    data = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
    explained = []
    for entry in data.get("survivor", []):
        kind = entry["kind"]
        if kind not in ("equivalent", "harmless"):
            raise ValueError(f"survivors.toml: kind must be equivalent or harmless, not {kind!r}")
        if not entry.get("reason", "").strip():
            raise ValueError(f"survivors.toml: {entry['function']} has no reason")
        explained.append(
            Explanation(
                entry["module"], entry["function"], signature(entry["diff"]), kind, entry["reason"]
            )
        )
    return explained


def explain(mutant: Mutant, explanations: Iterable[Explanation]) -> Explanation | None:
    for e in explanations:
        if (e.module, e.function, e.diff) == (mutant.module, mutant.function, mutant.signature):
            return e
    return None


def in_scope(mutant_key: str, targets: Sequence[Target]) -> bool:
    module, function = split_key(mutant_key)
    return any(
        t.module == module and any(fnmatch.fnmatchcase(function, f) for f in t.functions)
        for t in targets
    )


# ----------------------------------------------------------------- running


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def prepare(workdir: Path, targets: Sequence[Target]) -> None:
    """A scratch copy of src/, tests/ and pyproject.toml with the mutmut section."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    junk = shutil.ignore_patterns("__pycache__", ".hypothesis", ".node", "node_modules")
    for name in ("src", "tests"):
        shutil.copytree(ROOT / name, workdir / name, ignore=junk)
    tests = sorted({t for target in targets for t in target.tests})
    deselect = [arg for node in DESELECT for arg in ("--deselect", node)]
    args = ["-p", "tests.mutation.plugin", "-p", "no:cacheprovider", *deselect]
    section = f"""
[tool.mutmut]
source_paths = ["src"]
only_mutate = {_toml_list(t.path for t in targets)}
pytest_add_cli_args_test_selection = {_toml_list(tests)}
pytest_add_cli_args = {_toml_list(args)}
"""
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    (workdir / "pyproject.toml").write_text(text + section, "utf-8")


def run_mutmut(workdir: Path, targets: Sequence[Target], jobs: int) -> None:
    names = [mangle(t.module, f) for t in targets for f in t.functions]
    # The console script, not "python -m mutmut": mutmut forks workers and
    # warns (and misbehaves) when its __main__ is re-executed.
    mutmut = Path(sys.executable).parent / "mutmut"
    log = workdir / "mutmut.log"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("w") as out:
        # Its own session, so that an interrupted run (Ctrl-C, a CI timeout)
        # takes mutmut's forked workers down with it.
        proc = subprocess.Popen(
            [str(mutmut), "run", "--max-children", str(jobs), *names],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
    if proc.returncode != 0:
        tail = log.read_text("utf-8", "replace")[-4000:]
        raise SystemExit(f"mutmut failed (exit {proc.returncode}); end of {log}:\n{tail}")


def collect(workdir: Path, targets: Sequence[Target]) -> list[Mutant]:
    """Every in-scope mutant with its verdict and diff, read from mutmut's files."""
    cwd = Path.cwd()
    os.chdir(workdir)  # mutmut reads its config and mutants/ relative to the cwd
    try:
        from mutmut.mutation.data import SourceFileMutationData
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        from mutmut.stats import status_by_exit_code

        mutants = []
        for target in targets:
            data = SourceFileMutationData(path=Path(target.path))
            data.load()
            for key, code in sorted(data.exit_code_by_key.items()):
                if not in_scope(key, [target]):
                    continue
                status = status_by_exit_code[code]
                diff = "" if status in DETECTED else get_diff_for_mutant(key, path=target.path)
                module, function = split_key(key)
                mutants.append(Mutant(key, module, function, status, diff))
        return mutants
    finally:
        os.chdir(cwd)


# ----------------------------------------------------------------- judging


@dataclass
class Verdict:
    total: int
    detected: int
    explained: list[tuple[Mutant, Explanation]]
    unexplained: list[Mutant]
    stale: list[Explanation]

    @property
    def score(self) -> float:
        return 100.0 * self.detected / self.total if self.total else 100.0

    @property
    def passed(self) -> bool:
        return self.score >= THRESHOLD and not self.unexplained


def judge(
    mutants: Sequence[Mutant], explanations: Sequence[Explanation], targets: Sequence[Target]
) -> Verdict:
    counted = [m for m in mutants if m.status not in NOT_APPLICABLE]
    detected = sum(m.status in DETECTED for m in counted)
    explained, unexplained = [], []
    for m in counted:
        if m.status in DETECTED:
            continue
        # "no tests" and "not checked" are failures like a survivor, and only
        # a survivor can be explained (an unrun mutant proves nothing).
        e = explain(m, explanations) if m.status == "survived" else None
        if e is None:
            unexplained.append(m)
        else:
            explained.append((m, e))
    modules = {t.module for t in targets}
    used = {id(e) for _, e in explained}
    stale = [e for e in explanations if e.module in modules and id(e) not in used]
    return Verdict(len(counted), detected, explained, unexplained, stale)


def stub(m: Mutant) -> str:
    """A survivors.toml entry to fill in, for an unexplained survivor."""
    return (
        f'[[survivor]]\nmodule = "{m.module}"\nfunction = "{m.function}"\n'
        f"diff = '''\n{m.signature}\n'''\nkind = \"equivalent or harmless\"\n"
        'reason = "..."\n'
    )


def report(verdict: Verdict, mutants: Sequence[Mutant], targets: Sequence[Target]) -> str:
    lines = []
    for t in targets:
        mine = [m for m in mutants if m.module == t.module and m.status not in NOT_APPLICABLE]
        caught = sum(m.status in DETECTED for m in mine)
        lines.append(f"  {t.module:32} {caught:4}/{len(mine):<4} killed")
    lines.append(
        f"score {verdict.score:.1f}% ({verdict.detected}/{verdict.total}), "
        f"threshold {THRESHOLD:.0f}%; {len(verdict.explained)} explained survivors, "
        f"{len(verdict.unexplained)} unexplained"
    )
    for m in verdict.unexplained:
        lines.append(f"\nUNEXPLAINED {m.status}: {m.key}\n{m.diff}\n\n{stub(m)}")
    for e in verdict.stale:
        lines.append(f"note: explained survivor no longer seen: {e.module} {e.function}\n{e.diff}")
    return "\n".join(lines)


def write_results(verdict: Verdict, mutants: Sequence[Mutant], targets: Sequence[Target],
                  seconds: float | None) -> None:  # fmt: skip
    out = [
        "# Mutation testing results: the security core",
        "",
        "Written by `python -m tests.mutation --write-results` (mutmut "
        f"{_mutmut_version()}, {len(targets)} modules"
        + (f", {seconds / 60:.0f} minutes on 2 shared cores)." if seconds else ")."),
        "",
        f"**Score: {verdict.score:.1f}%** ({verdict.detected} of {verdict.total} mutants "
        f"killed; threshold {THRESHOLD:.0f}%). Unexplained survivors: "
        f"{len(verdict.unexplained)}.",
        "",
        "| module | functions | killed | mutants | score |",
        "|---|---|---:|---:|---:|",
    ]
    for t in targets:
        mine = [m for m in mutants if m.module == t.module and m.status not in NOT_APPLICABLE]
        caught = sum(m.status in DETECTED for m in mine)
        pct = 100.0 * caught / len(mine) if mine else 100.0
        funcs = "all" if t.functions == ("*",) else ", ".join(f"`{f}`" for f in t.functions)
        out.append(f"| `{t.module}` | {funcs} | {caught} | {len(mine)} | {pct:.1f}% |")
    out += ["", "## Remaining survivors, each explained", ""]
    if not verdict.explained:
        out.append("None.")
    for m, e in verdict.explained:
        out += [f"### `{m.module}` `{m.function}` ({e.kind})", "", "```diff", m.signature, "```",
                "", e.reason.strip(), ""]  # fmt: skip
    if verdict.unexplained:
        out += ["## Unexplained (the gate fails on these)", ""]
        for m in verdict.unexplained:
            out += [f"### `{m.key}` ({m.status})", "", "```diff", m.signature, "```", ""]
    RESULTS.write_text("\n".join(out).rstrip() + "\n", "utf-8")


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.mutation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ci", action="store_true", help="only the targets marked ci=True")
    parser.add_argument(
        "--module", action="append", default=[], help="only this module (gatepass.csrf)"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--workdir",
        type=Path,
        action="append",
        help="scratch directory (default build/mutation); with --reuse, repeatable: "
        "each module is judged from the last directory that ran it",
    )
    parser.add_argument("--write-results", action="store_true", help="rewrite RESULTS.md")
    parser.add_argument(
        "--reuse", action="store_true", help="judge the last run again, without running mutmut"
    )
    args = parser.parse_args(argv)

    targets = [t for t in TARGETS if t.ci or not args.ci]
    if args.module:
        targets = [t for t in targets if t.module in args.module]
        if not targets:
            parser.error(f"no target named {args.module}")
    workdirs: list[Path] = args.workdir or [ROOT / "build" / "mutation"]
    if len(workdirs) > 1 and not args.reuse:
        parser.error("several --workdir only with --reuse")
    explanations = load_explanations()
    started = time.monotonic()
    if not args.reuse:
        print(f"mutation: {len(targets)} modules in {workdirs[0]}", flush=True)
        prepare(workdirs[0], targets)
        run_mutmut(workdirs[0], targets, args.jobs)
    mutants = []
    for target in targets:
        ran = [w for w in workdirs if (w / "mutants" / (target.path + ".meta")).exists()]
        if not ran:
            parser.error(f"{target.module} was not run in {workdirs}")
        mutants += collect(ran[-1], [target])
    seconds = time.monotonic() - started
    verdict = judge(mutants, explanations, targets)
    print(report(verdict, mutants, targets))
    print(f"({seconds:.0f} s)")
    if args.write_results:
        write_results(verdict, mutants, targets, None if args.reuse else seconds)
    if not verdict.passed:
        print("mutation gate FAILED", file=sys.stderr)
        return 1
    print("mutation gate passed")
    return 0
