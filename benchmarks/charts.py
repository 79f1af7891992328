"""PNG bar charts of benchmark rows: median time and compiled temp memory per contender.

One PNG per suite, one row of two panels (time, memory) per (case, dtype, setting, malloc) group;
the optax bar (the baseline) is drawn in grey, jaxloss bars in blue, other peers in orange, and a
reference row that is not a loss (``write_floor``, ``layer_only``) in light grey. Uses
matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

_COLORS = {
    "jaxloss": "#1f77b4",
    "optax": "#7f7f7f",
    "write_floor": "#c7c7c7",
    "layer_only": "#c7c7c7",
}
_PEER = "#ff7f0e"


def _color(contender: str) -> str:
    if contender.startswith("jaxloss"):
        return _COLORS["jaxloss"]
    return _COLORS.get(contender, _PEER)


def _groups(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows keyed by their case, dtype and, where a suite has them, setting and malloc mode: one
    panel row per key, so a contender's name appears once per panel."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        parts = [str(row.get("case", "")), str(row.get("dtype", ""))]
        parts += [str(row[k]) for k in ("setting", "malloc") if row.get(k) is not None]
        groups.setdefault(f"{parts[0]} [{', '.join(parts[1:])}]", []).append(row)
    return groups


def suite_chart(suite: str, rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write the chart of one suite's rows to ``path`` and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(rows)
    fig, axes = plt.subplots(
        len(groups),
        2,
        figsize=(12, 2.2 + 0.45 * max(len(g) for g in groups.values()) * len(groups)),
        squeeze=False,
    )
    for title, (ax_t, ax_m) in zip(groups, axes, strict=True):
        group = groups[title]
        names = [str(r["contender"]) for r in group]
        colors = [_color(n) for n in names]
        times = [float(r.get("median_ms") or 0.0) for r in group]
        ax_t.barh(names, times, color=colors)
        ax_t.set_xlabel("median time (ms, lower is better)")
        ax_t.set_title(title, fontsize=9)
        for y, t in enumerate(times):
            ax_t.annotate(
                f"{t:,.1f}",
                (t, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        mems = [r.get("temp_mib") for r in group]
        shown = [float(m) if m is not None else 0.0 for m in mems]
        ax_m.barh(names, shown, color=colors)
        ax_m.set_xlabel("compiled temp memory (MiB, lower is better)")
        ax_m.set_title("temp memory (n/a: not an XLA program)", fontsize=9)
        for y, m in enumerate(mems):
            label = "n/a" if m is None else f"{float(m):,.1f}"
            ax_m.annotate(
                label,
                (shown[y], y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        for ax in (ax_t, ax_m):
            ax.invert_yaxis()
            ax.tick_params(axis="y", labelsize=8)
            ax.margins(x=0.18)
    fig.suptitle(f"jaxloss benchmarks: {suite}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_charts(rows: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One PNG per suite in ``out_dir`` (``<suite>.png``); returns the paths written."""
    suites: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        suites.setdefault(str(row.get("suite", "benchmark")), []).append(row)
    return [suite_chart(s, r, Path(out_dir) / f"{s}.png") for s, r in suites.items()]
