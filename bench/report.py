"""Writes ``bench/results/``: ``results.json``, ``results.md`` and ``results.png``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import Row


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}" if digits else f"{value:,.0f}"


def to_json(rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    out = []
    for r in rows:
        d = asdict(r)
        d["ratio"] = None if r.ratio is None else round(r.ratio, 3)
        for k in ("rps", "baseline_rps"):
            if d[k] is not None:
                d[k] = round(d[k], 1)
        for k in ("p50_ms", "p99_ms", "baseline_p99_ms"):
            if d[k] is not None and not math.isnan(d[k]):
                d[k] = round(d[k], 3)
        out.append(d)
    return {"meta": meta, "rows": out}


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        "# gatepass benchmarks",
        "",
        f"{meta['when']} · {meta['cpus']} CPUs · Python {meta['python']} · {meta['load']} · "
        f"{meta['rounds']} round(s) of {meta['duration_s']} s, medians · "
        "ratio = authenticated req/s ÷ the same app's unauthenticated baseline req/s, "
        "measured in the same run. Absolute numbers depend on the machine; compare ratios.",
        "",
        "| group | scenario | implementation | server | baseline req/s | req/s | ratio "
        "| p99 baseline / auth (ms) | note |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r.status != "ok":
            lines.append(
                f"| {r.group} | {r.scenario} | {r.implementation} | {r.server} "
                f"| – | – | – | – | **{r.status}** |"
            )
            continue
        ratio = "–" if r.ratio is None else f"{r.ratio:.2f}"
        p99 = f"{_num(r.baseline_p99_ms, 2)} / {_num(r.p99_ms, 2)}" if r.p99_ms is not None else "–"
        lines.append(
            f"| {r.group} | {r.scenario} | {r.implementation} | {r.server} "
            f"| {_num(r.baseline_rps)} | {_num(r.rps, 1 if (r.rps or 0) < 100 else 0)} "
            f"| {ratio} | {p99} | {r.note} |"
        )
    lines += targets(rows, meta)
    notes = meta.get("notes", [])
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def _find(rows: list[Row], group: str, scenario: str, server: str) -> Row | None:
    for r in rows:
        if (r.group, r.scenario, r.server) == (group, scenario, server) and r.status == "ok":
            return r
    return None


def targets(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    """Issue 14's targets, each with the figure this run measured: met or missed.

    The reasons for a miss are prose, in docs/benchmarks.md; this table only
    keeps the run honest about which targets it met.
    """
    checks: list[tuple[str, str, float | None, float]] = []
    groups = ("session cookie", "bearer JWT")
    servers = sorted({r.server for r in rows if r.group in groups})
    for server in servers:
        # granian runs a subset of the stores: what it did not run is left out.
        for store in ("sqlite", "postgres", "redis"):
            row = _find(rows, "session cookie", f"session / {store}", server)
            if row or server == "uvicorn":
                checks.append((f"session cookie GET, {store} ({server})", "≥ 0.85 of plain",
                               row.ratio if row else None, 0.85))  # fmt: skip
        for store in ("memory", "sqlite", "postgres", "redis"):
            row = _find(rows, "bearer JWT", f"bearer / {store}", server)
            if row or server == "uvicorn":
                checks.append((f"Bearer GET, {store} ({server})", "≥ 0.90 of plain",
                               row.ratio if row else None, 0.90))  # fmt: skip
    verify = _find(rows, "forward auth", "GET /auth/verify, session / redis", "uvicorn")
    checks.append(("/auth/verify with a session cookie (uvicorn)",
                   "≥ 0.80 of /healthz on gatepass serve",
                   verify.extra.get("in_stack_ratio") if verify else None, 0.80))  # fmt: skip
    refresh = _find(rows, "login & refresh", "refresh (rotation, redis)", "uvicorn")
    checks.append(("refresh with rotation, Redis (uvicorn)", "≥ 3,000 req/s",
                   refresh.rps if refresh else None, 3000.0))  # fmt: skip
    login = _find(rows, "login & refresh", "login (Argon2id)", "uvicorn")
    hash_ms, spare = meta.get("argon2_ms"), meta.get("spare_cores")
    if hash_ms and spare:
        goal = 0.9 * spare / (hash_ms / 1000)
        checks.append((f"login, Argon2id (uvicorn; {spare} spare core(s), "
                       f"{hash_ms:.1f} ms per hash)", f"≥ {goal:,.0f} req/s",
                       login.rps if login else None, goal))  # fmt: skip
    lines = [
        "",
        "## Targets (issue 14)",
        "",
        "| target | goal | this run | |",
        "|---|---|---:|---|",
    ]
    for name, goal_text, value, goal in checks:
        if value is None:
            lines.append(f"| {name} | {goal_text} | – | not measured |")
            continue
        shown = f"{value:.2f}" if goal < 10 else f"{value:,.0f}"
        lines.append(
            f"| {name} | {goal_text} | {shown} | {'met' if value >= goal else '**missed**'} |"
        )
    return lines


def chart(rows: list[Row], path: Path) -> str | None:
    """Two panels: ratio to baseline, and req/s (baseline hatched behind).  None when done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the bench venv has it; a bare run may not
        return f"no chart: {exc}"
    # The event-loop row is about latency (its note and the table), not throughput.
    shown = [
        r
        for r in rows
        if r.status == "ok" and r.rps is not None and r.baseline_rps and r.group != "event loop"
    ]
    if not shown:
        return "no chart: no successful rows"
    labels = [f"{r.scenario} · {r.implementation} · {r.server}" for r in shown]
    colors = ["#1f77b4" if r.implementation.startswith("gatepass") else "#ff7f0e" for r in shown]
    height = max(4.0, 0.32 * len(shown) + 1.5)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(16, height), sharey=True)
    y = list(range(len(shown)))
    ratios = [r.ratio or 0.0 for r in shown]
    ax1.barh(y, ratios, color=colors)
    ax1.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    for yi, value in zip(y, ratios, strict=True):
        ax1.text(value, yi, f" {value:.2f}", va="center", fontsize=7)
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.invert_yaxis()
    ax1.set_xlabel("authenticated ÷ baseline (higher is better)")
    ax1.set_title("ratio to the same app's unauthenticated route")
    ax2.barh(
        y,
        [r.baseline_rps or 0 for r in shown],
        color="none",
        edgecolor="grey",
        hatch="//",
        label="baseline",
    )
    ax2.barh(y, [r.rps or 0 for r in shown], color=colors, label="authenticated")
    ax2.set_xlabel("requests/s (log)")
    ax2.set_xscale("log")
    ax2.set_title("requests/s (blue: gatepass, orange: peers)")
    ax2.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return None


def write(rows: list[Row], meta: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    problem = chart(rows, directory / "results.png")
    if problem:
        meta.setdefault("notes", []).append(problem)
    (directory / "results.json").write_text(json.dumps(to_json(rows, meta), indent=2) + "\n")
    (directory / "results.md").write_text(markdown(rows, meta))
