"""Linear + cross-entropy (the language-model head), forward + backward: fused against unfused.

Every contender computes the mean per-token cross-entropy of ``hidden @ weight`` against integer
labels and its gradients with respect to ``hidden [N, D]`` and ``weight [D, V]``:

* ``jaxloss``          -- :func:`jaxloss.ops.linear_cross_entropy` (vocabulary streamed in blocks,
  recomputing ``custom_vjp``; default block size);
* ``jaxloss_unfused``  -- ``hidden @ weight`` fed to
  :func:`jaxloss.ops.sparse_softmax_cross_entropy`;
* ``optax``            -- ``hidden @ weight`` fed to
  ``optax.softmax_cross_entropy_with_integer_labels`` (autodiff): *the* unfused baseline;
* ``keras``            -- ``hidden @ weight`` fed to
  ``keras.losses.sparse_categorical_crossentropy`` on the JAX backend (skipped without Keras);
* ``torch_lce``        -- ``torch.nn.functional.linear_cross_entropy`` with
  ``options=LinearCrossEntropyOptions()`` (its chunked, memory-saving path, default chunking),
  eager ``backward()``;
* ``torch_lce_chunk1024`` -- the same with ``batch_chunk_size=1024`` (hand-tuned for speed; its
  chunked path computes the gradients inside the forward, 3 matmuls instead of our 4, but holds a
  ``[1024, V]`` logits chunk);
* ``torch_unfused``    -- the same function with ``options=None`` (``linear`` + ``cross_entropy``).

The torch contenders exist only when torch (2.13+, which has ``linear_cross_entropy``) is installed;
they run eagerly on torch's own CPU thread pool and report no compiled temp memory. All contenders
of one case are timed interleaved in one run (``_harness``); temp memory is XLA's compiled temp
allocation of the jitted ``value_and_grad``. ``max_abs_err`` is the largest per-token loss error
against a float64 NumPy reference on the first 256 tokens.

Run standalone::

    .venv/bin/python -m benchmarks.bench_linear_cross_entropy [--quick] [--sweep]

``--sweep`` times :func:`~jaxloss.ops.linear_cross_entropy` over block sizes (how the default block
was chosen) and writes ``benchmarks/results/linear_cross_entropy_block_sweep.md``.

``run(quick)`` returns one row per contender with the keys ``suite, case, dtype, contender,
median_ms, temp_mib, ratio_vs_optax`` (time / optax's time: below 1 is faster), ``mem_vs_optax``
(temp memory / optax's) and ``max_abs_err``. :func:`summary` checks the issue's targets.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxloss import ops

SUITE = "linear_cross_entropy"
FULL = (2048, 1024, 65536)  # N tokens, D hidden, V vocabulary
QUICK = (512, 256, 8192)
REF_TOKENS = 256
TORCH_CHUNK = 1024  # tokens per chunk of the tuned torch contender (fastest of 64..1024 here)

# The targets for the fused kernel against the unfused (optax) baseline.
MAX_MEMORY_FRACTION = 1 / 6
MAX_TIME_RATIO = 1.15


def _unfused(loss_fn):
    def per_token(hidden, weight, labels):
        return loss_fn(hidden @ weight, labels)

    return per_token


def _jax_contenders() -> dict[str, Any]:
    """name -> per-token loss ``(hidden, weight, labels) -> [N]``, all jit/grad-able."""
    out: dict[str, Any] = {
        "jaxloss": ops.linear_cross_entropy,
        "jaxloss_unfused": _unfused(ops.sparse_softmax_cross_entropy),
    }
    try:
        import optax

        out["optax"] = _unfused(optax.softmax_cross_entropy_with_integer_labels)
    except ImportError:  # pragma: no cover - optax is a bench dependency
        pass
    try:
        import keras

        if keras.backend.backend() == "jax":
            out["keras"] = _unfused(
                lambda logits, labels: keras.losses.sparse_categorical_crossentropy(
                    labels, logits, from_logits=True
                )
            )
    except ImportError:  # pragma: no cover
        pass
    return out


def _torch_contenders(hidden, weight, labels) -> dict[str, Any]:
    """name -> zero-argument callable running torch's forward + backward (empty without torch)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    if not hasattr(F, "linear_cross_entropy"):
        return {}
    h = torch.from_numpy(np.array(hidden, np.float32)).requires_grad_(True)
    w = torch.from_numpy(np.array(weight, np.float32).T.copy()).requires_grad_(True)  # [V, D]
    y = torch.from_numpy(np.array(labels, np.int64))
    options = getattr(torch.nn, "LinearCrossEntropyOptions", None)

    def step(opts):
        def call():
            h.grad = None
            w.grad = None
            loss = F.linear_cross_entropy(h, w, y, options=opts)
            loss.backward()
            return loss.detach()

        return call

    out = {}
    if options is not None:
        # As documented: LinearCrossEntropyOptions() (chunk size from its "aspect_ratio:2" rule,
        # 16 tokens per chunk at N=2048, D=1024, V=65536: little memory, many small matmuls) ...
        out["torch_lce"] = step(options())
        # ... and with a large hand-picked chunk (faster, but a [chunk, V] logits buffer).
        out[f"torch_lce_chunk{TORCH_CHUNK}"] = step(options(batch_chunk_size=TORCH_CHUNK))
    out["torch_unfused"] = step(None)
    return out


def _reference(hidden: np.ndarray, weight: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float64 per-token loss of the first tokens."""
    z = np.float64(hidden) @ np.float64(weight)
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return lse - z[np.arange(len(labels)), labels]


def _inputs(n: int, d: int, v: int):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(k1, (n, d), jnp.float32)
    weight = jax.random.normal(k2, (d, v), jnp.float32) * (2.0 / np.sqrt(d))
    labels = jax.random.randint(k3, (n,), 0, v, dtype=jnp.int32)
    return hidden, weight, labels


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _with_cpu_time(fns: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Wrap each callable to record the process CPU time (all threads) of every call.

    Calls run one at a time, so the process CPU time of a call is that contender's work. On a
    shared machine it is much steadier than wall time (which counts time spent waiting for a
    core); reported next to the wall-time median as ``cpu_ms``.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}

    def wrap(name, fn):
        def call():
            start = _cpu_seconds()
            out = _harness.block(fn())
            samples[name].append(_cpu_seconds() - start)
            return out

        return call

    return {name: wrap(name, fn) for name, fn in fns.items()}, samples


def _objective(loss_fn, labels):
    def objective(hidden, weight):
        return jnp.mean(loss_fn(hidden, weight, labels).astype(jnp.float32))

    return objective


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Time every contender on float32 operands; one row per contender."""
    n, d, v = QUICK if quick else FULL
    rounds = rounds or (5 if quick else 3)
    hidden, weight, labels = _inputs(n, d, v)
    reference = _reference(
        np.asarray(hidden[:REF_TOKENS]), np.asarray(weight), np.asarray(labels[:REF_TOKENS])
    )
    fns: dict[str, Any] = {}
    temp: dict[str, float | None] = {}
    errs: dict[str, float] = {}
    for name, loss_fn in _jax_contenders().items():
        objective = _objective(loss_fn, labels)
        step = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))
        fns[name] = lambda step=step: step(hidden, weight)
        tb = _harness.temp_bytes(jax.value_and_grad(objective, argnums=(0, 1)), hidden, weight)
        temp[name] = None if tb is None else tb / 2**20
        per_token = jax.jit(loss_fn)(hidden[:REF_TOKENS], weight, labels[:REF_TOKENS])
        errs[name] = float(np.max(np.abs(np.asarray(per_token, np.float64) - reference)))
    torch_fns = _torch_contenders(hidden, weight, labels)
    for name, call in torch_fns.items():
        fns[name] = call
        temp[name] = None
        import torch

        with torch.no_grad():
            h = torch.from_numpy(np.array(hidden[:REF_TOKENS]))
            w = torch.from_numpy(np.array(weight).T.copy())
            y = torch.from_numpy(np.array(labels[:REF_TOKENS], np.int64))
            per_token = torch.nn.functional.linear_cross_entropy(h, w, y, reduction="none")
        errs[name] = float(np.max(np.abs(per_token.double().numpy() - reference)))
    timed, cpu = _with_cpu_time(fns)
    times = _harness.time_interleaved(timed, rounds=rounds, warmup=1)
    base_ms = times.get("optax", float("nan")) * 1e3
    base_mem = temp.get("optax")
    base_cpu = statistics.median(cpu["optax"][1:]) * 1e3 if "optax" in cpu else float("nan")
    rows: list[dict[str, Any]] = []
    for name, seconds in times.items():
        ms = seconds * 1e3
        mem = temp[name]
        cpu_ms = statistics.median(cpu[name][1:]) * 1e3  # the warmup call is dropped
        rows.append(
            {
                "suite": SUITE,
                "case": f"fwd+bwd N={n} D={d} V={v}",
                "dtype": "float32",
                "contender": name,
                "median_ms": round(ms, 1),
                "temp_mib": None if mem is None else round(mem, 1),
                "ratio_vs_optax": round(ms / base_ms, 3),
                "mem_vs_optax": None if mem is None or not base_mem else round(mem / base_mem, 3),
                "cpu_ms": round(cpu_ms, 1),
                "cpu_ratio_vs_optax": round(cpu_ms / base_cpu, 3),
                "max_abs_err": float(f"{errs[name]:.3g}"),
            }
        )
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """The issue's three targets for the fused kernel, checked on ``rows`` (markdown)."""
    by = {row["contender"]: row for row in rows if row["suite"] == SUITE}
    fused, base = by.get("jaxloss"), by.get("optax") or by.get("jaxloss_unfused")
    if fused is None or base is None:
        return ""
    lines = [f"Targets for `jaxloss` (fused) against the unfused `{base['contender']}`:", ""]

    def check(ok: bool) -> str:
        return "met" if ok else "**missed**"

    if fused["temp_mib"] is not None and base["temp_mib"]:
        frac = fused["temp_mib"] / base["temp_mib"]
        lines.append(
            f"- temp memory {fused['temp_mib']} MiB vs {base['temp_mib']} MiB = 1/{1 / frac:.1f} "
            f"(target <= 1/{round(1 / MAX_MEMORY_FRACTION)}): {check(frac <= MAX_MEMORY_FRACTION)}"
        )
    ratio = fused["median_ms"] / base["median_ms"]
    lines.append(
        f"- time {fused['median_ms']} ms vs {base['median_ms']} ms = {ratio:.3f}x "
        f"(target <= {MAX_TIME_RATIO}x): {check(ratio <= MAX_TIME_RATIO)}"
    )
    if fused.get("cpu_ms") and base.get("cpu_ms"):
        cpu_ratio = fused["cpu_ms"] / base["cpu_ms"]
        lines.append(
            f"- CPU time (all threads; steadier than wall time on a shared machine) "
            f"{fused['cpu_ms']} ms vs {base['cpu_ms']} ms = {cpu_ratio:.3f}x "
            f"(target <= {MAX_TIME_RATIO}x): {check(cpu_ratio <= MAX_TIME_RATIO)}"
        )
    torch_row = by.get("torch_lce")
    if torch_row is not None:
        speed = torch_row["median_ms"] / fused["median_ms"]
        lines.append(
            f"- vs torch `linear_cross_entropy(..., options=LinearCrossEntropyOptions())` "
            f"{torch_row['median_ms']} ms: {speed:.2f}x faster (target > 1x): {check(speed > 1)}"
        )
        tuned = by.get(f"torch_lce_chunk{TORCH_CHUNK}")
        if tuned is not None:
            speed = tuned["median_ms"] / fused["median_ms"]
            cpu_speed = (
                f", CPU time {tuned['cpu_ms'] / fused['cpu_ms']:.2f}x"
                if tuned.get("cpu_ms") and fused.get("cpu_ms")
                else ""
            )
            lines.append(
                f"- vs torch with `batch_chunk_size={TORCH_CHUNK}` {tuned['median_ms']} ms: "
                f"time ratio torch/jaxloss {speed:.2f}x{cpu_speed} (informational: torch then "
                f"holds a [{TORCH_CHUNK}, V] logits chunk and computes the gradients in its "
                "forward)"
            )
    else:
        lines.append("- torch not installed: the torch comparison was not run")
    return "\n".join(lines)


def sweep(
    blocks: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384), quick: bool = False, rounds: int = 3
) -> list[dict[str, Any]]:
    """Time and temp memory of the fused kernel per block size, against optax (interleaved)."""
    import optax

    n, d, v = QUICK if quick else FULL
    hidden, weight, labels = _inputs(n, d, v)
    fns, temp = {}, {}
    candidates = {
        f"block={b}": (lambda h, w, y, b=b: ops.linear_cross_entropy(h, w, y, block_size=b))
        for b in blocks
    }
    candidates["optax"] = _unfused(optax.softmax_cross_entropy_with_integer_labels)
    for name, loss_fn in candidates.items():
        grad = jax.value_and_grad(_objective(loss_fn, labels), argnums=(0, 1))
        step = jax.jit(grad)
        fns[name] = lambda step=step: step(hidden, weight)
        temp[name] = _harness.temp_bytes(grad, hidden, weight) / 2**20
    timed, cpu = _with_cpu_time(fns)
    times = _harness.time_interleaved(timed, rounds=rounds, warmup=1)
    base = times["optax"]
    cpu_ms = {name: statistics.median(values[1:]) * 1e3 for name, values in cpu.items()}
    return [
        {
            "suite": SUITE + "_sweep",
            "case": f"fwd+bwd N={n} D={d} V={v}",
            "dtype": "float32",
            "contender": name,
            "median_ms": round(times[name] * 1e3, 1),
            "temp_mib": round(temp[name], 1),
            "ratio_vs_optax": round(times[name] / base, 3),
            "cpu_ms": round(cpu_ms[name], 1),
            "cpu_ratio_vs_optax": round(cpu_ms[name] / cpu_ms["optax"], 3),
        }
        for name in fns
    ]


COLUMNS = (
    "case",
    "contender",
    "median_ms",
    "temp_mib",
    "ratio_vs_optax",
    "mem_vs_optax",
    "cpu_ms",
    "cpu_ratio_vs_optax",
    "max_abs_err",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N, D, V = {QUICK} instead of {FULL}")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--sweep", action="store_true", help="time the block sizes instead")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    if args.sweep:
        rows = sweep(quick=args.quick, rounds=args.rounds or 3)
        table = _harness.format_table(
            rows,
            (
                "case",
                "contender",
                "median_ms",
                "temp_mib",
                "ratio_vs_optax",
                "cpu_ms",
                "cpu_ratio_vs_optax",
            ),
        )
        print(table)
        out = Path(__file__).parent / "results" / "linear_cross_entropy_block_sweep.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "# linear_cross_entropy: block-size sweep\n\n"
            f"jax {jax.__version__}, {os.cpu_count()} CPU cores\n\n{table}\n"
        )
        return 0
    rows = run(quick=args.quick, rounds=args.rounds)
    print(_harness.format_table(rows, COLUMNS))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
