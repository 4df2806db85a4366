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
    notes = meta.get("notes", [])
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


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
