"""The drop-in faces against the libraries they replace: same call, forward + backward.

Two cases, each timed interleaved (``_harness``) over ``[N, V]`` float32 logits and integer labels
``[N]``, the gradient of the mean loss with respect to the logits:

* ``torch cross_entropy``: ``jaxloss.compat.torch.cross_entropy`` (jitted ``value_and_grad``)
  against ``torch.nn.functional.cross_entropy`` with ``.backward()`` on the CPU (on the GPU
  when JAX runs on one and torch sees it), both at their default thread counts. The torch rows
  are left out when PyTorch is not installed.
* ``optax softmax_cross_entropy_with_integer_labels``: ``jaxloss.compat.optax``'s function of
  that name against optax's (both jitted ``value_and_grad``).

Why it matters: a port that only changes an import should not get slower; the faces call the
fused cross-entropy kernel, so they should be faster where that kernel is. Measured numbers live
in ``benchmarks/results/``.

Run standalone::

    .venv/bin/python -m benchmarks.bench_compat [--quick]

``run(quick)`` returns one row per (case, contender) with the keys ``suite, case, dtype,
contender, median_ms, temp_mib, ratio_vs_optax`` (optax case; ``None`` in the torch case),
``ratio_vs_peer`` (this contender's time divided by the peer library's: below 1 is faster) and
``speedup_vs_peer`` (its inverse).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxloss.compat import optax as compat_optax
from jaxloss.compat import torch as compat_torch

SUITE = "compat"
FULL = (4096, 32768)
QUICK = (512, 4096)


def _jax_step(loss_fn: Callable[..., jax.Array], labels: jax.Array) -> Callable[..., Any]:
    return jax.jit(jax.value_and_grad(lambda z: jnp.mean(loss_fn(z, labels))))


def _torch_step(logits: np.ndarray, labels: np.ndarray) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    device = _harness.torch_device()
    x = torch.from_numpy(logits.copy()).to(device).requires_grad_(True)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)

    def step():
        x.grad = None
        loss = torch.nn.functional.cross_entropy(x, y)
        loss.backward()
        return loss.detach(), x.grad

    return step


def _rows(case: str, times: dict[str, float], peer: str, temp: dict[str, float | None]):
    peer_ms = times[peer] * 1e3
    rows = []
    for name, seconds in times.items():
        ms = seconds * 1e3
        rows.append(
            {
                "suite": SUITE,
                "case": case,
                "dtype": "float32",
                "contender": name,
                "median_ms": round(ms, 2),
                "temp_mib": temp.get(name),
                "ratio_vs_optax": round(ms / peer_ms, 3) if peer == "optax" else None,
                "ratio_vs_peer": round(ms / peer_ms, 3),
                "speedup_vs_peer": round(peer_ms / ms, 3),
            }
        )
    return rows


def _temp_mib(loss_fn, logits, labels) -> float | None:
    fn = jax.value_and_grad(lambda z: jnp.mean(loss_fn(z, labels)))
    tb = _harness.temp_bytes(fn, logits)
    return None if tb is None else round(tb / 2**20, 3)


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Both cases; the torch rows only when PyTorch is importable."""
    import optax

    n, v = QUICK if quick else FULL
    rounds = rounds or (5 if quick else 7)
    key_x, key_y = jax.random.split(jax.random.key(0))
    logits = jax.random.normal(key_x, (n, v), jnp.float32) * 4.0
    labels = jax.random.randint(key_y, (n,), 0, v, dtype=jnp.int32)
    rows: list[dict[str, Any]] = []

    torch_step = _torch_step(np.asarray(logits), np.asarray(labels))
    if torch_step is not None:
        ours = _jax_step(compat_torch.cross_entropy, labels)
        times = _harness.time_interleaved(
            {"jaxloss.compat.torch": lambda: ours(logits), "torch": torch_step},
            rounds=rounds,
            warmup=2,
        )
        temp = {"jaxloss.compat.torch": _temp_mib(compat_torch.cross_entropy, logits, labels)}
        rows += _rows(f"torch cross_entropy fwd+bwd N={n} V={v}", times, "torch", temp)
        del ours

    fns = {
        "jaxloss.compat.optax": compat_optax.softmax_cross_entropy_with_integer_labels,
        "optax": optax.losses.softmax_cross_entropy_with_integer_labels,
    }
    steps = {name: _jax_step(fn, labels) for name, fn in fns.items()}
    times = _harness.time_interleaved(
        {name: (lambda step=step: step(logits)) for name, step in steps.items()},
        rounds=rounds,
        warmup=2,
    )
    temp = {name: _temp_mib(fn, logits, labels) for name, fn in fns.items()}
    case = f"optax softmax_cross_entropy_with_integer_labels fwd+bwd N={n} V={v}"
    rows += _rows(case, times, "optax", temp)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """One line per case: the face's time as a fraction of its peer's."""
    lines = []
    for row in rows:
        if row["contender"].startswith("jaxloss"):
            lines.append(
                f"- {row['case']}: {row['contender']} takes {row['ratio_vs_peer']:.2f}x the "
                f"peer's time ({row['speedup_vs_peer']:.2f}x faster)."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, rounds=args.rounds)
    if args.json:
        print(json.dumps(rows))
    else:
        columns = ["case", "contender", "median_ms", "temp_mib", "ratio_vs_peer"]
        print(_harness.format_table(rows, columns))
        print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
