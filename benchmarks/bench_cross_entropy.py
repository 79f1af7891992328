"""Sparse softmax cross-entropy, forward + backward: jaxloss against optax and Keras.

Each contender computes ``jax.value_and_grad`` of the mean per-token loss over ``[N, V]`` logits
(integer labels ``[N]``), jitted, arguments bound:

* ``jaxloss``     -- :func:`jaxloss.ops.sparse_softmax_cross_entropy` (``jax.custom_vjp``);
* ``jaxloss_jvp`` -- its forward-mode-capable twin
  :func:`jaxloss.ops.sparse_softmax_cross_entropy_jvp`;
* ``optax``       -- ``optax.softmax_cross_entropy_with_integer_labels`` (autodiff);
* ``keras``       -- ``keras.losses.sparse_categorical_crossentropy(from_logits=True)`` on the JAX
  backend (skipped when Keras is not installed).

in two settings (the ``setting`` column):

* ``kernel`` -- the loss alone: the gradient with respect to the logits is the jitted function's
  output, so every contender writes it into a fresh ``[N, V]`` array. One more row here is not a
  loss: ``write_floor`` (``logits + 1``: one read of the logits and one write of a fresh ``[N, V]``
  array, the least any contender does to return its gradient). On a CPU most of that time is the
  kernel's page faults on the fresh output buffer, so ``optax / write_floor`` bounds the speedup
  any kernel can have over optax in this setting.
* ``layer_step`` -- a training step: the logits come from a layer, ``hidden [N, 8] @ weight
  [8, V]``, and the gradient flows on to both, so the logits and their gradient are temporaries
  of the step, as in any classifier or language model. A backward that reads each logit once and
  writes its gradient once can write it in place over the dead logits; autodiff through a
  log-softmax keeps a second ``[N, V]`` buffer. The layer is thin so that its matmuls, the same
  for every contender, do not drown the loss on a CPU; the ``layer_only`` row is that step with a
  plain mean of the logits in place of the loss.

All contenders of one (dtype, setting) case are timed interleaved in the same run
(``_harness``), and the compiled temp memory of each is read from XLA's memory analysis.

The page faults depend on the allocator, so every case is measured twice: with the default glibc
malloc (4 KiB pages), and in a child process under ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``
(malloc asks for transparent huge pages, where the kernel allows them: ~500x fewer faults); the
``malloc`` column says which. For every dtype the per-token loss is also compared (kernel
setting) with a float64 NumPy reference computed from the same (rounded) logits:
``max_abs_err`` is the largest per-token error and ``mean_abs_err`` the error of the mean loss.

Run standalone::

    .venv/bin/python -m benchmarks.bench_cross_entropy [--quick]

``run(quick)`` returns one row per (malloc, dtype, setting, contender) with the keys ``suite,
case, setting, malloc, dtype, contender, median_ms, temp_mib, ratio_vs_optax`` (this contender's
time divided by optax's: below 1 is faster), ``speedup_vs_optax`` (optax's time divided by this
contender's), ``max_abs_err`` and ``mean_abs_err``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxloss import ops

SUITE = "cross_entropy"
FULL = (4096, 32768)
QUICK = (512, 4096)
MIN_SPEEDUP_VS_OPTAX = 1.25
SETTINGS = ("kernel", "layer_step")
LAYER_WIDTH = 8
_HUGEPAGES = "glibc.malloc.hugetlb=1"


def _malloc_mode() -> str:
    return "thp" if _HUGEPAGES in os.environ.get("GLIBC_TUNABLES", "") else "default"


def _contenders() -> dict[str, Any]:
    """name -> per-token loss function ``(logits, labels) -> [N]``."""
    out: dict[str, Any] = {
        "jaxloss": ops.sparse_softmax_cross_entropy,
        "jaxloss_jvp": ops.sparse_softmax_cross_entropy_jvp,
    }
    try:
        import optax

        out["optax"] = optax.softmax_cross_entropy_with_integer_labels
    except ImportError:  # pragma: no cover - optax is a bench dependency
        pass
    try:
        import keras

        if keras.backend.backend() == "jax":
            out["keras"] = lambda logits, labels: keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True
            )
    except ImportError:  # pragma: no cover
        pass
    return out


def _reference(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float64 per-token cross-entropy, computed in row blocks to bound memory."""
    out = np.empty(logits.shape[0], np.float64)
    for start in range(0, logits.shape[0], 512):
        x = logits[start : start + 512].astype(np.float64)
        m = x.max(axis=-1, keepdims=True)
        lse = (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[:, 0]
        y = labels[start : start + 512]
        out[start : start + 512] = lse - x[np.arange(len(y)), y]
    return out


def run(
    quick: bool = False, rounds: int | None = None, both_mallocs: bool = True
) -> list[dict[str, Any]]:
    """Every contender in float32 and bfloat16, under this process's malloc and (``both_mallocs``)
    the other one in a child process; one row per (malloc, dtype, contender)."""
    rows = _run_here(quick, rounds)
    if both_mallocs and _malloc_mode() == "default":
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), _HUGEPAGES]))
        argv = [sys.executable, "-m", __spec__.name, "--json", "--this-malloc-only"]
        argv += ["--quick"] * quick + ([f"--rounds={rounds}"] if rounds else [])
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        rows += json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def _run_here(quick: bool, rounds: int | None) -> list[dict[str, Any]]:
    n, v = QUICK if quick else FULL
    rounds = rounds or (5 if quick else 9)
    key_x, key_y, key_h, key_w = jax.random.split(jax.random.key(0), 4)
    base = jax.random.normal(key_x, (n, v), jnp.float32) * 4.0
    labels = jax.random.randint(key_y, (n,), 0, v, dtype=jnp.int32)
    labels_np = np.asarray(labels)
    # The layer step's logits have the same spread as the kernel's (standard deviation 4).
    hidden = jax.random.normal(key_h, (n, LAYER_WIDTH), jnp.float32)
    weight = jax.random.normal(key_w, (LAYER_WIDTH, v), jnp.float32) * (4.0 / LAYER_WIDTH**0.5)
    contenders = _contenders()
    malloc = _malloc_mode()
    rows: list[dict[str, Any]] = []
    for dtype in ("float32", "bfloat16"):
        logits = base.astype(dtype)
        reference = _reference(np.asarray(logits.astype(jnp.float32)), labels_np)
        errs = {}
        for name, loss_fn in contenders.items():
            per_token = np.asarray(jax.jit(loss_fn)(logits, labels).astype(jnp.float32), np.float64)
            errs[name] = (
                float(np.max(np.abs(per_token - reference))),
                float(abs(per_token.mean() - reference.mean())),
            )
        layer = (weight.astype(dtype), hidden.astype(dtype))
        for setting in SETTINGS:
            fns, temp = _steps(setting, contenders, labels, logits, layer)
            times = _harness.time_interleaved(fns, rounds=rounds, warmup=2)
            base_ms = times.get("optax", float("nan")) * 1e3
            for name in fns:
                ms = times[name] * 1e3
                err = errs.get(name) if setting == "kernel" else None
                rows.append(
                    {
                        "suite": SUITE,
                        "case": f"sparse fwd+bwd N={n} V={v}",
                        "setting": setting,
                        "malloc": malloc,
                        "dtype": dtype,
                        "contender": name,
                        "median_ms": round(ms, 2),
                        "temp_mib": None if temp.get(name) is None else round(temp[name], 3),
                        "ratio_vs_optax": round(ms / base_ms, 3),
                        "speedup_vs_optax": round(base_ms / ms, 3),
                        "max_abs_err": float(f"{err[0]:.3g}") if err else None,
                        "mean_abs_err": float(f"{err[1]:.3g}") if err else None,
                    }
                )
            del fns
    return rows


def _steps(setting, contenders, labels, logits, layer):
    """``(name -> zero-argument timed call, name -> compiled temp MiB)`` of one setting."""
    fns: dict[str, Any] = {}
    temp: dict[str, float | None] = {}
    steps = {}
    for name, loss_fn in contenders.items():
        if setting == "kernel":

            def objective(z, loss_fn=loss_fn):
                return jnp.mean(loss_fn(z, labels).astype(jnp.float32))

            steps[name] = (jax.value_and_grad(objective), (logits,))
        else:

            def objective(w, h, loss_fn=loss_fn):
                return jnp.mean(loss_fn(h @ w, labels).astype(jnp.float32))

            steps[name] = (jax.value_and_grad(objective, argnums=(0, 1)), layer)
    if setting == "kernel":
        steps["write_floor"] = (lambda z: z + jnp.ones((), z.dtype), (logits,))
    else:
        steps["layer_only"] = (
            jax.value_and_grad(lambda w, h: jnp.mean((h @ w).astype(jnp.float32)), argnums=(0, 1)),
            layer,
        )
    for name, (fn, args) in steps.items():
        step = jax.jit(fn)
        fns[name] = lambda step=step, args=args: step(*args)
        if name in contenders:
            tb = _harness.temp_bytes(fn, *args)
            temp[name] = None if tb is None else tb / 2**20
    return fns, temp


def summary(rows: list[dict[str, Any]]) -> str:
    """The issue's targets: float32 >= 1.25x optax's speed, never more temp memory, more
    accurate in bfloat16; with the bound the write floor puts on any kernel's speedup (kernel
    setting) and the share of the step that is the layer's own (layer step)."""
    lines = []
    for malloc in dict.fromkeys(r.get("malloc", "default") for r in rows):
        for setting in dict.fromkeys(r.get("setting", "kernel") for r in rows):
            for dtype in dict.fromkeys(r["dtype"] for r in rows):
                by = {
                    r["contender"]: r
                    for r in rows
                    if r["dtype"] == dtype
                    and r.get("malloc", "default") == malloc
                    and r.get("setting", "kernel") == setting
                }
                line = _summary_line(by, dtype)
                if line:
                    lines.append(f"- {malloc} malloc, {setting}, {dtype}: {line}")
    return "\n".join(lines)


def _summary_line(by: dict[str, dict[str, Any]], dtype: str) -> str:
    ours, optax = by.get("jaxloss"), by.get("optax")
    if ours is None or optax is None:
        return ""
    checks = [f"{ours['speedup_vs_optax']}x optax's speed"]
    if dtype == "float32":
        ok = ours["speedup_vs_optax"] >= MIN_SPEEDUP_VS_OPTAX
        checks[0] += f" ({'ok' if ok else 'MISSED'}, target >= {MIN_SPEEDUP_VS_OPTAX}x)"
    elif ours["max_abs_err"] is not None and optax["max_abs_err"] is not None:
        ok = ours["max_abs_err"] < optax["max_abs_err"]
        checks.append(
            f"max error {ours['max_abs_err']} vs optax's {optax['max_abs_err']} "
            f"({'ok' if ok else 'MISSED'}: more accurate)"
        )
    if ours["temp_mib"] is not None and optax["temp_mib"] is not None:
        ok = ours["temp_mib"] <= optax["temp_mib"]
        checks.append(
            f"temp {ours['temp_mib']} MiB vs optax's {optax['temp_mib']} "
            f"({'ok' if ok else 'MISSED'}: never more)"
        )
    if "write_floor" in by:
        bound = optax["median_ms"] / by["write_floor"]["median_ms"]
        checks.append(f"the write floor caps any kernel at {bound:.2f}x optax")
    if "layer_only" in by:
        share = by["layer_only"]["median_ms"] / optax["median_ms"]
        checks.append(f"the layer alone is {share:.0%} of optax's step")
    return "; ".join(checks)


COLUMNS = (
    "case",
    "setting",
    "malloc",
    "dtype",
    "contender",
    "median_ms",
    "temp_mib",
    "speedup_vs_optax",
    "max_abs_err",
    "mean_abs_err",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N, V = {QUICK} instead of {FULL}")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--this-malloc-only",
        action="store_true",
        help="measure only under this process's malloc (GLIBC_TUNABLES as set), no child process",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, rounds=args.rounds, both_mallocs=not args.this_malloc_only)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"jax {jax.__version__}, backend {jax.default_backend()}")
    print(_harness.format_table(rows, COLUMNS))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
