"""Run every benchmark suite and write ``benchmarks/results/latest.md`` plus PNG bar charts.

Usage (``make bench`` runs the first line)::

    .venv/bin/python -m benchmarks                      # every suite, full size
    .venv/bin/python -m benchmarks --quick              # small shapes, a smoke run in minutes
    .venv/bin/python -m benchmarks --suite linear_cross_entropy --suite ctc
    .venv/bin/python -m benchmarks --out /tmp/bench --no-charts

Each suite is a module ``benchmarks.bench_<suite>`` exposing ``run(quick: bool = False) ->
list[dict]`` (rows with ``suite, case, dtype, contender, median_ms, temp_mib, ratio_vs_optax`` and
possibly extra keys) and optionally ``summary(rows) -> str`` (markdown checked against targets).
A suite whose module is missing or fails is reported (in the terminal and in ``latest.md``) and
the others still run; the exit status is 1 if any suite failed.

Inside a suite the contenders are timed interleaved (``benchmarks._harness``); the progress bar
shows the suite and, below it, the timing rounds of the contender group being measured.
Outputs (in ``--out``, default ``benchmarks/results``): ``latest.md`` (machine, versions, date,
one table per suite), ``latest.json`` (the raw rows) and ``<suite>.png`` per suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import inspect
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

SUITES: dict[str, str] = {
    "cross_entropy": "benchmarks.bench_cross_entropy",
    "ctc": "benchmarks.bench_ctc",
    "linear_cross_entropy": "benchmarks.bench_linear_cross_entropy",
    "compat": "benchmarks.bench_compat",
    "contrastive": "benchmarks.bench_contrastive",
    "distillation": "benchmarks.bench_distillation",
    "rnnt": "benchmarks.bench_rnnt",
}
STANDARD_COLUMNS = ("case", "dtype", "contender", "median_ms", "temp_mib", "ratio_vs_optax")
RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------------------------
# machine and versions


def machine() -> dict[str, str]:
    """CPU model and core counts (from /proc/cpuinfo where there is one), memory, OS."""
    info: dict[str, str] = {"platform": platform.platform()}
    model, processors, cores = None, 0, set()
    physical = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model is None:
                    model = value
                elif key == "processor":
                    processors += 1
                elif key == "physical id":
                    physical = value
                elif key == "core id":
                    cores.add((physical, value))
    except OSError:
        pass
    info["cpu"] = model or platform.processor() or platform.machine()
    info["logical_cpus"] = str(processors or os.cpu_count())
    if cores:
        info["physical_cores"] = str(len(cores))
    with contextlib.suppress(AttributeError):
        info["usable_cpus"] = str(len(os.sched_getaffinity(0)))
    try:
        with open("/proc/meminfo") as f:
            total_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["memory"] = f"{total_kib / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    with contextlib.suppress(AttributeError, OSError):
        info["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        import jax

        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = ", ".join(str(d) for d in jax.devices())
    except Exception:  # pragma: no cover - reported, never fatal
        pass
    return info


def versions() -> dict[str, str]:
    """Versions of python and of every library a contender may come from."""
    out = {"python": platform.python_version()}
    for dist in ("jax", "jaxlib", "numpy", "optax", "keras", "torch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        import jaxloss

        out["jaxloss"] = getattr(jaxloss, "__version__", "?")
    except Exception:  # pragma: no cover
        out["jaxloss"] = "import failed"
    return out


# --------------------------------------------------------------------------------------------
# progress


@contextlib.contextmanager
def _round_progress(enabled: bool, position: int) -> Iterator[None]:
    """While active, every ``_harness.time_interleaved`` call shows a bar of its timing calls."""
    from benchmarks import _harness

    original = _harness.time_interleaved
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    def with_bar(
        contenders: dict[str, Callable[[], Any]],
        *,
        rounds: int = 10,
        warmup: int = 2,
        on_call: Callable[[str], None] | None = None,
    ) -> dict[str, float]:
        total = len(contenders) * (rounds + warmup)
        bar = tqdm(total=total, position=position, leave=False, unit="call", dynamic_ncols=True)

        def advance(name: str) -> None:
            # after the call's timer has stopped: the terminal write is not timed
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)
            if on_call is not None:
                on_call(name)

        try:
            return original(contenders, rounds=rounds, warmup=warmup, on_call=advance)
        finally:
            bar.close()

    _harness.time_interleaved = with_bar
    try:
        yield
    finally:
        _harness.time_interleaved = original


# --------------------------------------------------------------------------------------------
# running


def run_suite(
    name: str, quick: bool, rounds: int | None
) -> tuple[list[dict[str, Any]], str, str | None]:
    """``(rows, summary_markdown, error)`` of one suite; a missing/failing suite gives an error."""
    module_name = SUITES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return [], "", f"suite `{name}` skipped: module `{module_name}` does not exist yet."
        return [], "", f"suite `{name}` skipped: importing `{module_name}` failed: {exc!r}"
    except Exception as exc:
        return [], "", f"suite `{name}` skipped: importing `{module_name}` failed: {exc!r}"
    kwargs: dict[str, Any] = {"quick": quick}
    if rounds is not None and "rounds" in inspect.signature(module.run).parameters:
        kwargs["rounds"] = rounds
    try:
        rows = list(module.run(**kwargs))
    except Exception:
        return [], "", f"suite `{name}` failed:\n\n```\n{traceback.format_exc()}```"
    summary = ""
    if hasattr(module, "summary"):
        try:
            summary = module.summary(rows) or ""
        except Exception as exc:  # a broken summary never loses the rows
            summary = f"(summary failed: {exc!r})"
    return rows, summary, None


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols = [c for c in STANDARD_COLUMNS if any(c in r for r in rows)]
    for row in rows:
        cols += [k for k in row if k not in cols and k != "suite"]
    return cols


def render_markdown(
    results: dict[str, tuple[list[dict[str, Any]], str, str | None]],
    info: dict[str, str],
    vers: dict[str, str],
    *,
    quick: bool,
    started: datetime.datetime,
    seconds: float,
    charts: list[Path],
) -> str:
    from benchmarks._harness import format_table

    lines = [
        "# jaxloss benchmarks",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M:%S %Z').strip()} "
        f"(run took {seconds / 60:.1f} min)",
        f"- command: `python -m benchmarks{' --quick' if quick else ''}`"
        + (" (quick: small shapes, not the reference numbers)" if quick else ""),
        "- machine: " + "; ".join(f"{k} {v}" for k, v in info.items()),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        "",
        "Every contender computes the loss *and* its gradient (`jax.value_and_grad`, jitted;",
        "torch: eager `backward()`). Contenders of one table are timed interleaved in the same",
        "process; the time is the median over rounds, `temp_mib` is XLA's compiled temp",
        "allocation (`memory_analysis().temp_size_in_bytes`, n/a for torch), `ratio_vs_optax` is",
        "time / optax time (below 1 is faster).",
        "",
    ]
    for suite, (rows, summary, error) in results.items():
        lines += [f"## {suite}", ""]
        if error:
            lines += [error, ""]
            continue
        lines += [format_table(rows, _columns(rows)), ""]
        if summary:
            lines += [summary, ""]
        chart = next((c for c in charts if c.stem == suite), None)
        if chart is not None:
            lines += [f"![{suite}]({chart.name})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    parser.add_argument(
        "--suite", action="append", choices=list(SUITES), help="run only this suite (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds per contender")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    names = args.suite or list(SUITES)
    started = datetime.datetime.now().astimezone()
    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    show = not args.no_progress
    results: dict[str, tuple[list[dict[str, Any]], str, str | None]] = {}
    if show:
        from tqdm.auto import tqdm

        suites_bar = tqdm(names, position=0, unit="suite", dynamic_ncols=True)
    else:
        suites_bar = names
    with _round_progress(show, position=1):
        for name in suites_bar:
            if show:
                suites_bar.set_description(name)
            results[name] = run_suite(name, args.quick, args.rounds)
            rows, _, error = results[name]
            message = error or f"suite `{name}`: {len(rows)} rows"
            if show:
                suites_bar.write(message)
            else:
                print(message, flush=True)
    seconds = time.perf_counter() - t0

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    all_rows = [row for rows, _, _ in results.values() for row in rows]
    charts: list[Path] = []
    if not args.no_charts and all_rows:
        from benchmarks.charts import write_charts

        charts = write_charts(all_rows, out)
    info, vers = machine(), versions()
    if load_at_start is not None:
        info["load_average"] = (
            f"{' '.join(f'{x:.2f}' for x in load_at_start)} at start, "
            f"{info.get('load_average', '?')} at end (1/5/15 min; above the core count, other "
            "processes competed for the CPU and wall times are inflated)"
        )
    markdown = render_markdown(
        results, info, vers, quick=args.quick, started=started, seconds=seconds, charts=charts
    )
    (out / "latest.md").write_text(markdown + "\n")
    (out / "latest.json").write_text(
        json.dumps(
            {
                "date": started.isoformat(),
                "quick": args.quick,
                "machine": info,
                "versions": vers,
                "rows": all_rows,
                "errors": {s: e for s, (_, _, e) in results.items() if e},
            },
            indent=1,
            default=str,
        )
        + "\n"
    )
    print(markdown)
    print(f"\nwrote {out / 'latest.md'}, {out / 'latest.json'}" + "".join(f", {c}" for c in charts))
    return 1 if any(error for _, _, error in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
