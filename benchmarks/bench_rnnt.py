"""RNN-T loss, forward + backward: the custom-VJP kernel against plain autodiff of the same scan.

Every contender computes the mean per-sequence RNN-T loss of joiner outputs ``[batch, T, U+1,
vocab]`` (log-softmax included) against integer labels ``[batch, U]`` (blank 0, full lengths) and
its gradient with respect to the logits:

* ``jaxloss``  -- :func:`jaxloss.ops.rnnt_loss` (alpha over anti-diagonals, hand-written beta
  backward, one select-based gradient pass);
* ``autodiff`` -- *the* baseline, since no JAX library ships an RNN-T loss: :func:`_plain_autodiff`,
  what a user writes by hand (``jax.nn.log_softmax`` over the vocabulary, blank and label
  log-probabilities gathered from it, the alpha recursion over the anti-diagonals as a
  ``lax.scan`` with ``jnp.logaddexp``, ``jax.grad``);
* ``autodiff_lean`` -- :func:`jaxloss.ops.rnnt_loss_autodiff`, a smarter autodiff version (the
  earlier baseline of this benchmark): the per-node logsumexp and the two gathers instead of the
  full log-softmax, and a select-based logaddexp, so its backward keeps less;
* ``torchaudio`` -- ``torchaudio.functional.rnnt_loss`` + ``backward()`` (only when torchaudio is
  installed; eager, no compiled temp memory).

The cases are (batch 8, T 200, U 50, vocab 256) and (batch 4, T 500, U 100, vocab 1024); ``--quick``
shrinks them. All contenders of one case are timed interleaved (``_harness``); temp memory is XLA's
compiled temp allocation of the jitted ``value_and_grad``. ``max_rel_err`` is the largest relative
error of the per-sequence losses against a float64 NumPy lattice DP (torchaudio's from a separate
untimed call with ``reduction="none"``).

Run standalone::

    .venv/bin/python -m benchmarks.bench_rnnt [--quick] [--rounds N] [--case 0|1]

``run(quick)`` returns one row per (case, contender) with the common keys ``suite, case, dtype,
contender, median_ms, temp_mib`` plus ``speedup_vs_autodiff`` (> 1 is faster), ``mem_vs_autodiff``
and ``max_rel_err``; :func:`summary` checks the targets (>= 2x the autodiff version's speed at <=
1/3 of its temp memory).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxloss import ops

SUITE = "rnnt"
FULL = ((8, 200, 50, 256), (4, 500, 100, 1024))  # batch, T, U, vocab
QUICK = ((4, 60, 15, 64), (2, 120, 30, 128))

MIN_SPEEDUP = 2.0
MAX_MEMORY_FRACTION = 1 / 3


def _reference(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float64 per-sequence loss: the lattice DP, vectorised over the batch and the u axis."""
    x = logits.astype(np.float64)
    m = x.max(-1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
    batch, time, u1, _ = logp.shape
    blank = logp[..., 0]
    label = np.take_along_axis(logp[:, :, :-1, :], labels[:, None, :, None], axis=3)[..., 0]
    alpha = np.full((batch, u1), -np.inf)
    alpha[:, 0] = 0.0
    for u in range(1, u1):  # t = 0: labels only
        alpha[:, u] = alpha[:, u - 1] + label[:, 0, u - 1]
    for t in range(1, time):
        new = alpha + blank[:, t - 1]
        for u in range(1, u1):
            new[:, u] = np.logaddexp(new[:, u], new[:, u - 1] + label[:, t, u - 1])
        alpha = new
    return -(alpha[:, -1] + blank[:, -1, -1])


# log(0) for the hand-written version: with -inf, jnp.logaddexp's gradient at two -inf is NaN
_LOG_ZERO = -1e30


def _plain_autodiff(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-sequence RNN-T loss as written by hand, for ``jax.grad`` to differentiate."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    batch, time, u1, _ = logp.shape
    blank = logp[..., 0]
    label = jnp.take_along_axis(logp[:, :, :-1, :], labels[:, None, :, None], axis=-1)[..., 0]
    label = jnp.pad(label, ((0, 0), (0, 0), (0, 1)), constant_values=_LOG_ZERO)
    # node (t, u) lies on diagonal t + u; both of its predecessors lie on the previous one
    diag = np.arange(time + u1 - 1)[:, None]
    u = np.arange(u1)[None, :]
    on_grid = (diag - u >= 0) & (diag - u < time)
    t = np.clip(diag - u, 0, time - 1)
    blank_d = jnp.where(on_grid, blank[:, t, u], _LOG_ZERO).transpose(1, 0, 2)
    label_d = jnp.where(on_grid, label[:, t, u], _LOG_ZERO).transpose(1, 0, 2)

    def step(alpha, xs):
        b, lab = xs
        from_label = jnp.pad((alpha + lab)[:, :-1], ((0, 0), (1, 0)), constant_values=_LOG_ZERO)
        return jnp.logaddexp(alpha + b, from_label), None

    alpha0 = jnp.full((batch, u1), _LOG_ZERO).at[:, 0].set(0.0)
    alpha, _ = jax.lax.scan(step, alpha0, (blank_d[:-1], label_d[:-1]))
    return -(alpha[:, -1] + blank[:, -1, -1])


def _torchaudio(logits: np.ndarray, labels: np.ndarray) -> tuple[Any, np.ndarray] | None:
    """torchaudio's timed step (loss and gradient) and its per-sequence losses, or None."""
    try:
        import torch
        import torchaudio.functional as taf
    except ImportError:
        return None
    batch, time, u1, _ = logits.shape
    device = _harness.torch_device()
    x_in = torch.from_numpy(np.array(logits, copy=True)).to(device)  # writable
    targets = torch.from_numpy(labels.astype(np.int32)).to(device)
    lengths = torch.full((batch,), time, dtype=torch.int32, device=device)
    target_lengths = torch.full((batch,), u1 - 1, dtype=torch.int32, device=device)

    def step():
        x = x_in.detach().requires_grad_()
        loss = taf.rnnt_loss(x, targets, lengths, target_lengths, blank=0, reduction="mean")
        loss.backward()
        return loss.detach(), x.grad

    with torch.no_grad():
        per_seq = taf.rnnt_loss(x_in, targets, lengths, target_lengths, blank=0, reduction="none")
    return step, per_seq.double().cpu().numpy()


def _case(shape: tuple[int, int, int, int], rounds: int) -> list[dict[str, Any]]:
    batch, time, length, vocab = shape
    key_x, key_y = jax.random.split(jax.random.key(sum(shape)))
    logits = jax.random.normal(key_x, (batch, time, length + 1, vocab), jnp.float32)
    labels = jax.random.randint(key_y, (batch, length), 1, vocab, dtype=jnp.int32)
    reference = _reference(np.asarray(logits), np.asarray(labels))
    contenders = {
        "jaxloss": lambda x: ops.rnnt_loss(x, labels),
        "autodiff": lambda x: _plain_autodiff(x, labels),
        "autodiff_lean": lambda x: ops.rnnt_loss_autodiff(x, labels),
    }
    fns: dict[str, Any] = {}
    temp: dict[str, float | None] = {}
    errs: dict[str, float] = {}

    def rel_err(per_seq: np.ndarray) -> float:
        err = np.abs(np.asarray(per_seq, np.float64) - reference) / np.abs(reference)
        return float(np.max(err))

    for name, loss_fn in contenders.items():

        def objective(z, loss_fn=loss_fn):
            return jnp.mean(loss_fn(z))

        step = jax.jit(jax.value_and_grad(objective))
        fns[name] = lambda step=step: step(logits)
        tb = _harness.temp_bytes(jax.value_and_grad(objective), logits)
        temp[name] = None if tb is None else tb / 2**20
        errs[name] = rel_err(np.asarray(jax.jit(loss_fn)(logits)))
    peer = _torchaudio(np.asarray(logits), np.asarray(labels))
    if peer is not None:
        fns["torchaudio"], temp["torchaudio"] = peer[0], None
        errs["torchaudio"] = rel_err(peer[1])

    times = _harness.time_interleaved(fns, rounds=rounds, warmup=1)
    base_ms, base_mem = times["autodiff"] * 1e3, temp["autodiff"]
    rows = []
    for name, seconds in times.items():
        ms, mem = seconds * 1e3, temp[name]
        rows.append(
            {
                "suite": SUITE,
                "case": f"B={batch} T={time} U={length} V={vocab}",
                "dtype": "float32",
                "contender": name,
                "median_ms": round(ms, 2),
                "temp_mib": None if mem is None else round(mem, 2),
                "speedup_vs_autodiff": round(base_ms / ms, 2),
                "mem_vs_autodiff": (
                    None if mem is None or not base_mem else round(mem / base_mem, 3)
                ),
                "max_rel_err": float(f"{errs[name]:.3g}"),
            }
        )
    return rows


def run(
    quick: bool = False, rounds: int | None = None, cases: list[int] | None = None
) -> list[dict[str, Any]]:
    """Time every contender at each case; one row per (case, contender)."""
    rounds = rounds or (5 if quick else 7)
    shapes = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    for i, shape in enumerate(shapes):
        if cases is None or i in cases:
            rows += _case(shape, rounds)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Per case: >= 2x the autodiff version's speed at <= 1/3 of its temp memory."""
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows):
        by = {r["contender"]: r for r in rows if r["case"] == case}
        ours = by.get("jaxloss")
        if ours is None or "autodiff" not in by:
            continue
        speed_ok = ours["speedup_vs_autodiff"] >= MIN_SPEEDUP
        checks = [
            f"{ours['speedup_vs_autodiff']}x the autodiff version's speed "
            f"({'ok' if speed_ok else 'MISSED'}, target >= {MIN_SPEEDUP}x)"
        ]
        if ours.get("mem_vs_autodiff") is not None:
            mem_ok = ours["mem_vs_autodiff"] <= MAX_MEMORY_FRACTION
            checks.append(
                f"{ours['mem_vs_autodiff']} of its temp memory "
                f"({'ok' if mem_ok else 'MISSED'}, target <= 1/3)"
            )
        lines.append(f"- {case}: " + "; ".join(checks))
    return "\n".join(lines)


COLUMNS = (
    "case",
    "contender",
    "median_ms",
    "temp_mib",
    "speedup_vs_autodiff",
    "mem_vs_autodiff",
    "max_rel_err",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"cases {QUICK} instead of {FULL}")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--case", type=int, action="append", help="run only this case index")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, rounds=args.rounds, cases=args.case)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    print(_harness.format_table(rows, COLUMNS))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
