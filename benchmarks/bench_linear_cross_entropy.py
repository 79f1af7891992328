"""Linear + cross-entropy (the language-model head), forward + backward: fused against unfused.

Every contender computes the mean per-token cross-entropy of ``hidden @ weight`` against integer
labels and its gradients with respect to ``hidden [N, D]`` and ``weight [D, V]``:

* ``jaxloss_recompute``  -- :func:`jaxloss.ops.linear_cross_entropy` with
  ``strategy="recompute"``: vocabulary streamed in blocks, the backward recomputes each block's
  logits (4 matmuls; least memory);
* ``jaxloss_in_forward`` -- the same with ``strategy="in_forward"``: chunks of tokens (512 by
  default here, a 128 MiB logits chunk, half of torch's fastest) against the whole vocabulary,
  gradients computed in the forward (3 matmuls; the residual is the gradient);
* ``jaxloss_in_forward_chunk128`` -- the same with ``token_block_size=128`` (a 32 MiB logits
  chunk): "in_forward" within the 1/20 memory bound;
* ``optax``              -- ``hidden @ weight`` fed to
  ``optax.softmax_cross_entropy_with_integer_labels`` (autodiff): *the* unfused baseline;
* ``torch_lce``          -- ``torch.nn.functional.linear_cross_entropy`` with
  ``options=LinearCrossEntropyOptions()`` (its chunked, memory-saving path, default chunking),
  eager ``backward()``;
* ``torch_lce_chunk<c>`` -- the same with ``batch_chunk_size=c`` for each ``c`` in
  ``TORCH_CHUNKS`` (its chunked path computes the gradients inside the forward, 3 matmuls, with a
  ``[c, V]`` logits chunk); the summary compares with the fastest of them;
* ``torch_unfused``      -- the same function with ``options=None`` (linear + cross_entropy).

The torch contenders exist only when torch (2.13+, which has ``linear_cross_entropy``) is installed;
they run eagerly on torch's own CPU thread pool and report no compiled temp memory. All contenders
of one case are timed interleaved in one run (``_harness``); temp memory is XLA's compiled temp
allocation of the jitted ``value_and_grad``. ``max_abs_err`` is the largest per-token loss error
against a float64 NumPy reference on the first 256 tokens.

``ratio_vs_optax`` is a *time* ratio, the contender's median time over optax's: below 1 is faster
(0.8 means it takes 0.8x optax's time, a 1.25x speed-up).

Vocab-parallel rows (``vocab_parallel`` cases, compiled in a child process with 8 host devices):
the compiled temp memory *per device* of the fused head inside ``shard_map`` with the vocabulary
split over a ``model`` axis of 1, 2, 4 and 8 devices, next to the unfused optax head under plain
``jit`` with the weight sharded the same way (GSPMD), and the per-device arguments + outputs (the
weight shard and its gradient). The fused head's temp memory is a few ``[tokens, block]`` buffers
whatever the vocabulary, so it falls only once the local vocabulary is smaller than the block;
the unfused head's ``[tokens, vocab / m]`` logits fall as ``1/m``. Memory only: 8 simulated
devices on a few cores give no meaningful time.

Run standalone::

    .venv/bin/python -m benchmarks.bench_linear_cross_entropy [--quick] [--sweep]

``--sweep`` times :func:`~jaxloss.ops.linear_cross_entropy` over block sizes (how the default block
was chosen) and writes ``benchmarks/results/linear_cross_entropy_block_sweep.md``.

``run(quick)`` returns one row per contender with the keys ``suite, case, dtype, contender,
median_ms, temp_mib, ratio_vs_optax``, ``mem_vs_optax`` (temp memory / optax's) and
``max_abs_err``. :func:`summary` checks the targets.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
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
# Tokens per chunk of the tuned torch contenders: 1024 was the fastest of 64..1024 in an earlier
# sweep on this machine; 256 is timed too so that "its best batch_chunk_size" is a measured claim.
TORCH_CHUNKS = (256, 1024)
MODEL_AXIS_SIZES = (1, 2, 4, 8)

# Targets for the fused kernel against the unfused (optax) baseline.
MAX_MEMORY_FRACTION = 1 / 20
MAX_TIME_RATIO = 1.0


def _unfused(loss_fn):
    def per_token(hidden, weight, labels):
        return loss_fn(hidden @ weight, labels)

    return per_token


def _jax_contenders() -> dict[str, Any]:
    """name -> per-token loss ``(hidden, weight, labels) -> [N]``, all jit/grad-able."""
    out: dict[str, Any] = {
        f"jaxloss_{strategy}": functools.partial(ops.linear_cross_entropy, strategy=strategy)
        for strategy in ("recompute", "in_forward")
    }
    out["jaxloss_in_forward_chunk128"] = functools.partial(
        ops.linear_cross_entropy, strategy="in_forward", token_block_size=128
    )
    try:
        import optax

        out["optax"] = _unfused(optax.softmax_cross_entropy_with_integer_labels)
    except ImportError:  # pragma: no cover - optax is a bench dependency
        pass
    return out


def _torch_absent() -> str:
    """Why there are no torch rows: torch missing, or a torch without ``linear_cross_entropy``."""
    try:
        import torch
    except ImportError:
        return "torch not installed"
    return f"torch {torch.__version__} has no torch.nn.functional.linear_cross_entropy"


def _torch_contenders(hidden, weight, labels) -> dict[str, Any]:
    """name -> zero-argument callable running torch's forward + backward (empty without torch)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    if not hasattr(F, "linear_cross_entropy"):
        return {}
    device = _harness.torch_device()
    h = torch.from_numpy(np.array(hidden, np.float32)).to(device).requires_grad_(True)
    w = torch.from_numpy(np.array(weight, np.float32).T.copy()).to(device)  # [V, D]
    w.requires_grad_(True)
    y = torch.from_numpy(np.array(labels, np.int64)).to(device)
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
        # ... and with hand-picked chunks (faster, but a [chunk, V] logits buffer).
        for chunk in TORCH_CHUNKS:
            out[f"torch_lce_chunk{chunk}"] = step(options(batch_chunk_size=chunk))
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


def run(
    quick: bool = False, rounds: int | None = None, only: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Time every contender (or those named in ``only``) on float32 operands; a row for each."""
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
        if only and name not in only:
            continue
        objective = _objective(loss_fn, labels)
        step = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))
        fns[name] = lambda step=step: step(hidden, weight)
        tb = _harness.temp_bytes(jax.value_and_grad(objective, argnums=(0, 1)), hidden, weight)
        temp[name] = None if tb is None else tb / 2**20
        per_token = jax.jit(loss_fn)(hidden[:REF_TOKENS], weight, labels[:REF_TOKENS])
        errs[name] = float(np.max(np.abs(np.asarray(per_token, np.float64) - reference)))
    torch_fns = _torch_contenders(hidden, weight, labels)
    for name, call in torch_fns.items():
        if only and name not in only:
            continue
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
    return rows + vocab_parallel_rows(quick)


def summary(rows: list[dict[str, Any]]) -> str:
    """The targets for the fused kernel (default strategy), checked on ``rows`` (markdown)."""
    by = {row["contender"]: row for row in rows if row["suite"] == SUITE and "N=" in row["case"]}
    from jaxloss.ops.linear_cross_entropy import DEFAULT_STRATEGY

    fused, base = by.get(f"jaxloss_{DEFAULT_STRATEGY}"), by.get("optax")
    if fused is None or base is None:
        return ""
    lines = [
        f"Targets for `{fused['contender']}` (the default strategy) against the unfused optax head "
        "(time ratios are the contender's time over the other's: below 1 is faster):",
        "",
    ]

    def check(ok: bool) -> str:
        return "met" if ok else "**missed**"

    for name in ("jaxloss_recompute", "jaxloss_in_forward", "jaxloss_in_forward_chunk128"):
        row = by.get(name)
        if row is None:
            continue
        ratio = row["median_ms"] / base["median_ms"]
        frac = row["temp_mib"] / base["temp_mib"] if row["temp_mib"] and base["temp_mib"] else None
        mem = f", temp memory 1/{1 / frac:.1f} of optax's" if frac else ""
        lines.append(
            f"- `{name}`: {row['median_ms']} ms vs optax {base['median_ms']} ms = time ratio "
            f"{ratio:.3f} ({1 / ratio:.2f}x optax's speed){mem}"
        )
    frac = fused["temp_mib"] / base["temp_mib"]
    lines.append(
        f"- default: temp memory {fused['temp_mib']} MiB vs {base['temp_mib']} MiB = "
        f"1/{1 / frac:.1f} (target <= 1/{round(1 / MAX_MEMORY_FRACTION)}): "
        f"{check(frac <= MAX_MEMORY_FRACTION)}"
    )
    ratio = fused["median_ms"] / base["median_ms"]
    lines.append(
        f"- default: time ratio {ratio:.3f} (target <= {MAX_TIME_RATIO}, at least as fast): "
        f"{check(ratio <= MAX_TIME_RATIO)}"
    )
    tuned = [
        row
        for name, row in by.items()
        if name.startswith("torch_lce") and row["median_ms"] is not None
    ]
    if tuned:
        best = min(tuned, key=lambda row: row["median_ms"])
        speed = best["median_ms"] / fused["median_ms"]
        lines.append(
            f"- vs torch's fastest fused head, `{best['contender']}` {best['median_ms']} ms: "
            f"jaxloss is {speed:.2f}x its speed (target > 1): {check(speed > 1)}"
        )
        fastest = min(
            (
                row
                for name, row in by.items()
                if name.startswith("jaxloss_") and row["median_ms"] is not None
            ),
            key=lambda row: row["median_ms"],
        )
        lines.append(
            f"- jaxloss's fastest, `{fastest['contender']}` ({fastest['temp_mib']} MiB): "
            f"{best['median_ms'] / fastest['median_ms']:.2f}x torch's speed"
        )
    else:
        lines.append(f"- {_torch_absent()}: the torch comparison was not run")
    parallel = sorted(
        (row for row in rows if row["suite"] == SUITE and row["case"].startswith("vocab_parallel")),
        key=lambda row: (row["contender"], row["model_axis"]),
    )
    if parallel:
        lines.append(
            "- vocab-parallel temp memory per device in MiB by model-axis size (+ arguments and "
            "outputs: the weight shard and its gradient):"
        )
        for name in dict.fromkeys(row["contender"] for row in parallel):
            cells = ", ".join(
                f"{row['model_axis']}: {row['temp_mib']} (+{row['args_outputs_mib']} in/out)"
                for row in parallel
                if row["contender"] == name
            )
            lines.append(f"  `{name}` {cells}")
    return "\n".join(lines)


_PARALLEL_CHILD = """
import json, sys
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxloss import ops
n, d, v = (int(x) for x in sys.argv[1:4])
rows = []
for m in (int(x) for x in sys.argv[4:]):
    mesh = Mesh(np.array(jax.devices()[:m]), ("model",))
    h = jax.ShapeDtypeStruct((n, d), jnp.float32, sharding=NamedSharding(mesh, P()))
    w = jax.ShapeDtypeStruct((d, v), jnp.float32, sharding=NamedSharding(mesh, P(None, "model")))
    y = jnp.zeros((n,), jnp.int32)
    def local(h, w, y):
        f = lambda h, w: jnp.mean(ops.linear_cross_entropy(h, w, y, vocab_axis_name="model"))
        return jax.value_and_grad(f, argnums=(0, 1))(h, w)
    fused = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(None, "model"), P()),
                          out_specs=(P(), (P(), P(None, "model"))))
    unfused = jax.value_and_grad(
        lambda h, w, y: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(h @ w, y)),
        argnums=(0, 1))
    for name, fn in (("jaxloss_vocab_parallel", fused), ("optax_gspmd", unfused)):
        mem = jax.jit(fn).lower(h, w, y).compile().memory_analysis()
        io = mem.argument_size_in_bytes + mem.output_size_in_bytes
        rows.append({"contender": name, "model_axis": m,
                     "temp_mib": round(mem.temp_size_in_bytes / 2**20, 1),
                     "args_outputs_mib": round(io / 2**20, 1)})
print("ROWS" + json.dumps(rows))
"""


def vocab_parallel_rows(quick: bool = False) -> list[dict[str, Any]]:
    """Per-device compiled temp memory vs model-axis size (a child process with 8 host devices)."""
    n, d, v = QUICK if quick else FULL
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    args = [str(x) for x in (n, d, v, *MODEL_AXIS_SIZES)]
    proc = subprocess.run(
        [sys.executable, "-c", _PARALLEL_CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ROWS"))
    return [
        {
            "suite": SUITE,
            "case": f"vocab_parallel N={n} D={d} V={v} model={row['model_axis']}",
            "dtype": "float32",
            "contender": row["contender"],
            "median_ms": None,
            "temp_mib": row["temp_mib"],
            "ratio_vs_optax": None,
            "model_axis": row["model_axis"],
            "args_outputs_mib": row["args_outputs_mib"],
        }
        for row in json.loads(line[4:])
    ]


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
    parser.add_argument(
        "--only", default=None, help="comma-separated contenders to time (default: all)"
    )
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
    only = tuple(args.only.split(",")) if args.only else None
    rows = run(quick=args.quick, rounds=args.rounds, only=only)
    print(_harness.format_table(rows, COLUMNS))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
