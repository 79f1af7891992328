"""Sparse softmax cross-entropy, forward + backward: jaxloss against optax and Keras.

Each contender computes ``jax.value_and_grad`` of the mean per-token loss with respect to the
logits ``[N, V]`` (integer labels ``[N]``), jitted, arguments bound:

* ``jaxloss``     -- :func:`jaxloss.ops.sparse_softmax_cross_entropy` (``jax.custom_vjp``);
* ``jaxloss_jvp`` -- its forward-mode-capable twin
  :func:`jaxloss.ops.sparse_softmax_cross_entropy_jvp`;
* ``optax``       -- ``optax.softmax_cross_entropy_with_integer_labels`` (autodiff);
* ``keras``       -- ``keras.losses.sparse_categorical_crossentropy(from_logits=True)`` on the JAX
  backend (skipped when Keras is not installed).

All contenders of one (dtype) case are timed interleaved in the same run (``_harness``), and the
compiled temp memory of each is read from XLA's memory analysis. For every dtype the per-token loss
is also compared with a float64 NumPy reference computed from the same (rounded) logits:
``max_abs_err`` is the largest per-token error and ``mean_abs_err`` the error of the mean loss.

Run standalone::

    .venv/bin/python -m benchmarks.bench_cross_entropy [--quick]

``run(quick)`` returns one row per (dtype, contender) with the keys ``suite, case, dtype,
contender, median_ms, temp_mib, ratio_vs_optax`` (this contender's time divided by optax's: below 1
is faster), ``speedup_vs_optax`` (optax's time divided by this contender's), ``max_abs_err`` and
``mean_abs_err``.
"""

from __future__ import annotations

import argparse
import os
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


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Time every contender in float32 and bfloat16; one row per (dtype, contender)."""
    n, v = QUICK if quick else FULL
    rounds = rounds or (5 if quick else 9)
    key_x, key_y = jax.random.split(jax.random.key(0))
    base = jax.random.normal(key_x, (n, v), jnp.float32) * 4.0
    labels = jax.random.randint(key_y, (n,), 0, v, dtype=jnp.int32)
    labels_np = np.asarray(labels)
    contenders = _contenders()
    rows: list[dict[str, Any]] = []
    for dtype in ("float32", "bfloat16"):
        logits = base.astype(dtype)
        reference = _reference(np.asarray(logits.astype(jnp.float32)), labels_np)
        fns, temp, errs = {}, {}, {}
        for name, loss_fn in contenders.items():

            def objective(z, loss_fn=loss_fn):
                return jnp.mean(loss_fn(z, labels).astype(jnp.float32))

            step = jax.jit(jax.value_and_grad(objective))
            fns[name] = lambda step=step, logits=logits: step(logits)
            tb = _harness.temp_bytes(jax.value_and_grad(objective), logits)
            temp[name] = None if tb is None else tb / 2**20
            per_token = np.asarray(jax.jit(loss_fn)(logits, labels).astype(jnp.float32), np.float64)
            errs[name] = (
                float(np.max(np.abs(per_token - reference))),
                float(abs(per_token.mean() - reference.mean())),
            )
        times = _harness.time_interleaved(fns, rounds=rounds, warmup=2)
        base_ms = times.get("optax", float("nan")) * 1e3
        for name in contenders:
            ms = times[name] * 1e3
            rows.append(
                {
                    "suite": SUITE,
                    "case": f"sparse fwd+bwd N={n} V={v}",
                    "dtype": dtype,
                    "contender": name,
                    "median_ms": round(ms, 2),
                    "temp_mib": None if temp[name] is None else round(temp[name], 3),
                    "ratio_vs_optax": round(ms / base_ms, 3),
                    "speedup_vs_optax": round(base_ms / ms, 3),
                    "max_abs_err": float(f"{errs[name][0]:.3g}"),
                    "mean_abs_err": float(f"{errs[name][1]:.3g}"),
                }
            )
        del fns
    return rows


COLUMNS = (
    "case",
    "dtype",
    "contender",
    "median_ms",
    "temp_mib",
    "speedup_vs_optax",
    "max_abs_err",
    "mean_abs_err",
)


_HUGEPAGES = "glibc.malloc.hugetlb=1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N, V = {QUICK} instead of {FULL}")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--hugepages",
        action="store_true",
        help="re-run under GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (transparent huge pages for "
        "malloc): the fresh [N, V] gradient buffer of every call then costs ~500x fewer page "
        "faults, which otherwise dominate every contender's time on a CPU",
    )
    args = parser.parse_args(argv)
    if args.hugepages and _HUGEPAGES not in os.environ.get("GLIBC_TUNABLES", ""):
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), _HUGEPAGES]))
        argv = sys.argv[1:] if argv is None else argv
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name, *argv], env)
    rows = run(quick=args.quick, rounds=args.rounds)
    tunables = os.environ.get("GLIBC_TUNABLES", "(default malloc)")
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, GLIBC_TUNABLES {tunables}")
    print(_harness.format_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
