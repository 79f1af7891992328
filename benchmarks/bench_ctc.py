"""CTC loss, forward + backward: jaxloss against optax, Keras and PyTorch.

Every contender computes the mean per-sequence CTC loss of logits ``[batch, time, classes]``
(log-softmax included) against integer labels ``[batch, label_len]`` (blank 0, every sequence at
full length) and its gradient with respect to the logits:

* ``jaxloss``     -- :func:`jaxloss.ops.ctc_loss` (log-space alpha scan, beta-recursion
  ``custom_vjp``);
* ``jaxloss_jvp`` -- its forward-mode-capable twin :func:`jaxloss.ops.ctc_loss_jvp` (JAX's autodiff
  through the same scan);
* ``optax``       -- ``optax.ctc_loss`` (autodiff through its scan): *the* baseline;
* ``keras``       -- ``keras.losses.ctc`` on the JAX backend (a port of optax's; skipped without
  Keras);
* ``torch``       -- ``torch.nn.functional.log_softmax`` + ``ctc_loss`` + ``backward()``, PyTorch's
  native kernel (CPU; CUDA when JAX runs on a GPU and torch sees it), eager (only when torch
  is installed; no compiled temp memory).

The two cases are the issue's: (batch 8, time 1000, classes 512, labels 150) and (batch 64,
time 150, classes 28, labels 40); ``--quick`` shrinks them. All contenders of one case are timed
interleaved in one run (``_harness``); temp memory is XLA's compiled temp allocation of the jitted
``value_and_grad``. ``max_rel_err`` is the largest relative error of the per-sequence losses
against a float64 NumPy forward recursion.

Run standalone::

    .venv/bin/python -m benchmarks.bench_ctc [--quick] [--rounds N]

``run(quick)`` returns one row per (case, contender) with the keys ``suite, case, dtype,
contender, median_ms, temp_mib, ratio_vs_optax`` (time / optax's time: below 1 is faster),
``speedup_vs_optax``, ``mem_vs_optax`` (temp memory / optax's) and ``max_rel_err``;
:func:`summary` checks the issue's targets.
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

SUITE = "ctc"
FULL = ((8, 1000, 512, 150), (64, 150, 28, 40))  # batch, time, classes, label length
QUICK = ((4, 200, 128, 30), (16, 60, 28, 12))

# The targets against optax (on the machine the benchmark runs on): the speed-up at the long,
# wide case (time 1000) and at the others, and the temp-memory fraction at every case.
MIN_SPEEDUP_VS_OPTAX = 2.0
MIN_SPEEDUP_VS_OPTAX_LONG = 2.5
MAX_MEMORY_FRACTION = 1 / 3


def _jax_contenders(labels: jax.Array) -> dict[str, Any]:
    """name -> per-sequence loss ``logits -> [batch]`` (labels bound, full lengths)."""
    out: dict[str, Any] = {
        "jaxloss": lambda x: ops.ctc_loss(x, labels),
        "jaxloss_jvp": lambda x: ops.ctc_loss_jvp(x, labels),
    }
    try:
        import optax

        def optax_ctc(x):
            logit_pad = jnp.zeros(x.shape[:2], x.dtype)
            label_pad = jnp.zeros(labels.shape, x.dtype)
            return optax.ctc_loss(x, logit_pad, labels, label_pad)

        out["optax"] = optax_ctc
    except ImportError:  # pragma: no cover - optax is a bench dependency
        pass
    try:
        import keras

        if keras.backend.backend() == "jax":
            out["keras"] = lambda x: keras.losses.ctc(labels, x)
    except ImportError:  # pragma: no cover
        pass
    return out


def _torch_contender(logits: np.ndarray, labels: np.ndarray) -> Any:
    """A zero-argument callable running torch's CTC forward + backward, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    batch, time, _ = logits.shape
    device = _harness.torch_device()
    x_in = torch.from_numpy(np.array(logits, copy=True)).to(device)  # writable, contiguous
    targets = torch.from_numpy(labels.astype(np.int64)).to(device)
    input_lengths = torch.full((batch,), time, dtype=torch.int64, device=device)
    target_lengths = torch.full((batch,), labels.shape[1], dtype=torch.int64, device=device)

    def step():
        x = x_in.detach().requires_grad_()
        log_probs = torch.nn.functional.log_softmax(x, dim=2).transpose(0, 1)  # [T, B, C]
        loss = torch.nn.functional.ctc_loss(
            log_probs, targets, input_lengths, target_lengths, blank=0, reduction="none"
        ).mean()
        loss.backward()
        return loss.detach(), x.grad

    def losses():
        with torch.no_grad():
            log_probs = torch.nn.functional.log_softmax(x_in, dim=2)
            return (
                torch.nn.functional.ctc_loss(
                    log_probs.transpose(0, 1),
                    targets,
                    input_lengths,
                    target_lengths,
                    blank=0,
                    reduction="none",
                )
                .cpu()
                .numpy()
            )

    return step, losses


def _reference(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float64 per-sequence CTC loss: log-space forward recursion, vectorised over the batch."""
    x = logits.astype(np.float64)
    logp = x - x.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    batch, time, _ = logp.shape
    length = labels.shape[1]
    ext = np.zeros((batch, 2 * length + 1), np.int64)
    ext[:, 1::2] = labels
    skip = np.zeros(ext.shape, bool)
    skip[:, 3::2] = labels[:, 1:] != labels[:, :-1]
    rows = np.arange(batch)[:, None]
    alpha = np.full(ext.shape, -np.inf)
    alpha[:, :2] = logp[rows, 0, ext[:, :2]]
    with np.errstate(invalid="ignore"):
        for t in range(1, time):
            one = np.concatenate([np.full((batch, 1), -np.inf), alpha[:, :-1]], 1)
            two = np.concatenate([np.full((batch, 2), -np.inf), alpha[:, :-2]], 1)
            two = np.where(skip, two, -np.inf)
            alpha = np.logaddexp(np.logaddexp(alpha, one), two) + logp[rows, t, ext]
    return -np.logaddexp(alpha[:, -1], alpha[:, -2])


def _case(shape: tuple[int, int, int, int], rounds: int) -> list[dict[str, Any]]:
    batch, time, classes, length = shape
    key_x, key_y = jax.random.split(jax.random.key(sum(shape)))
    logits = jax.random.normal(key_x, (batch, time, classes), jnp.float32) * 2.0
    labels = jax.random.randint(key_y, (batch, length), 1, classes, dtype=jnp.int32)
    logits_np, labels_np = np.asarray(logits), np.asarray(labels)
    reference = _reference(logits_np, labels_np)

    fns: dict[str, Any] = {}
    temp: dict[str, float | None] = {}
    errs: dict[str, float] = {}
    for name, loss_fn in _jax_contenders(labels).items():

        def objective(z, loss_fn=loss_fn):
            return jnp.mean(loss_fn(z))

        step = jax.jit(jax.value_and_grad(objective))
        fns[name] = lambda step=step: step(logits)
        tb = _harness.temp_bytes(jax.value_and_grad(objective), logits)
        temp[name] = None if tb is None else tb / 2**20
        per_seq = np.asarray(jax.jit(loss_fn)(logits), np.float64)
        errs[name] = float(np.max(np.abs(per_seq - reference) / np.abs(reference)))
    torch_fns = _torch_contender(logits_np, labels_np)
    if torch_fns is not None:
        fns["torch"], torch_losses = torch_fns
        temp["torch"] = None
        errs["torch"] = float(np.max(np.abs(torch_losses() - reference) / np.abs(reference)))

    times = _harness.time_interleaved(fns, rounds=rounds, warmup=2)
    base_ms = times.get("optax", float("nan")) * 1e3
    base_mem = temp.get("optax")
    rows = []
    for name, seconds in times.items():
        ms = seconds * 1e3
        mem = temp[name]
        rows.append(
            {
                "suite": SUITE,
                "case": f"B={batch} T={time} C={classes} L={length}",
                "dtype": "float32",
                "contender": name,
                "median_ms": round(ms, 2),
                "temp_mib": None if mem is None else round(mem, 2),
                "ratio_vs_optax": round(ms / base_ms, 3),
                "speedup_vs_optax": round(base_ms / ms, 2),
                "mem_vs_optax": None if mem is None or not base_mem else round(mem / base_mem, 3),
                "max_rel_err": float(f"{errs[name]:.3g}"),
            }
        )
    return rows


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Time every contender at both cases; one row per (case, contender)."""
    rounds = rounds or (5 if quick else 9)
    rows: list[dict[str, Any]] = []
    for shape in QUICK if quick else FULL:
        rows += _case(shape, rounds)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Targets per case: >= 2x optax's speed (2.5x at time 1000), <= 1/3 of its temp memory,
    faster than torch."""
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows):
        by = {r["contender"]: r for r in rows if r["case"] == case}
        ours = by.get("jaxloss")
        if ours is None or "optax" not in by:
            continue
        target = MIN_SPEEDUP_VS_OPTAX_LONG if " T=1000 " in case else MIN_SPEEDUP_VS_OPTAX
        checks = [
            f"{ours['speedup_vs_optax']}x optax's speed "
            f"({'ok' if ours['speedup_vs_optax'] >= target else 'MISSED'}, target >= {target}x)",
        ]
        if ours.get("mem_vs_optax") is not None:
            ok = ours["mem_vs_optax"] <= MAX_MEMORY_FRACTION
            checks.append(
                f"{ours['mem_vs_optax']} of optax's temp memory "
                f"({'ok' if ok else 'MISSED'}, target <= 1/3)"
            )
        if "torch" in by:
            ratio = by["torch"]["median_ms"] / ours["median_ms"]
            checks.append(
                f"{ratio:.2f}x torch's speed ({'ok' if ratio > 1 else 'MISSED'}, target > 1x)"
            )
        lines.append(f"- {case}: " + "; ".join(checks))
    return "\n".join(lines)


COLUMNS = (
    "case",
    "contender",
    "median_ms",
    "temp_mib",
    "speedup_vs_optax",
    "mem_vs_optax",
    "max_rel_err",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"cases {QUICK} instead of {FULL}")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, rounds=args.rounds)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    print(_harness.format_table(rows, COLUMNS))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
