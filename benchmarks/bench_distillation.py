"""Distillation divergence, forward + backward: the custom-VJP kernel against the plain formula.

Every contender computes ``jax.value_and_grad`` of the mean per-token divergence between student
and teacher logits ``[N, V]`` with respect to the student's logits (the teacher is frozen, as in
distillation), jitted, arguments bound:

* ``jaxloss``   -- :func:`jaxloss.ops.distillation_divergence` (custom VJP: per-row scalars saved,
  the softmaxes recomputed in one fused backward pass), its default chunk (whole rows on CPU);
* ``jaxloss_streaming`` -- the same with a cache-sized ``vocab_chunk`` (about 2 MiB of each
  input's rows): the forward streams the vocabulary, reading each input once (twice for the
  JSD);
* ``autodiff``  -- :func:`jaxloss.ops.distillation_divergence_autodiff` (same values, JAX autodiff,
  the zero-probability guards included);
* ``plain_jnp`` -- the formula as one writes it in jnp (``log_softmax`` of both, ``exp``, the
  mixture's ``logaddexp``, sums), no guards: the baseline of the ratios;
* ``optax``     -- ``optax.losses.kl_divergence_with_log_targets`` on ``log_softmax`` outputs
  (forward KL only; skipped when optax is missing).

The cases are forward KL (``beta=0``), the generalized JSD (``beta=0.5``) and reverse KL
(``beta=1``) at ``N=4096, V=32768`` float32 (``--quick``: ``512 x 4096``). All contenders of one
case are timed interleaved (``_harness``); temp memory is XLA's compiled temp allocation of the
jitted step. ``max_abs_err`` is the largest per-token error against a float64 NumPy evaluation on
the first 256 rows.

Run standalone::

    .venv/bin/python -m benchmarks.bench_distillation [--quick] [--rounds N] [--hlo]

``--hlo`` prints, instead of timings, the evidence for the kernel's passes over the vocabulary:
for the forward alone and for ``value_and_grad`` (student), streaming (a cache-sized chunk) and
in whole rows (XLA:CPU's default), every instruction of XLA's compiled entry computation that
reads an ``[N, V]`` array (the streaming loop counts as one: each step reads its chunk once and
runs the step's passes on it while it is in cache).

``run(quick)`` returns one row per (case, contender) with the common keys ``suite, case, dtype,
contender, median_ms, temp_mib`` plus ``speedup_vs_plain`` (> 1 is faster), ``mem_vs_plain`` and
``max_abs_err``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxloss import ops
from jaxloss.ops.distillation import _cpu_chunk

SUITE = "distillation"
FULL = (4096, 32768)
QUICK = (512, 4096)
BETAS = (0.0, 0.5, 1.0)
CHECK_ROWS = 256


def _plain(s: jax.Array, t: jax.Array, beta: float) -> jax.Array:
    ls, lt = jax.nn.log_softmax(s, axis=-1), jax.nn.log_softmax(t, axis=-1)
    if beta == 0.0:
        return jnp.sum(jnp.exp(lt) * (lt - ls), axis=-1)
    if beta == 1.0:
        return jnp.sum(jnp.exp(ls) * (ls - lt), axis=-1)
    lm = jnp.logaddexp(lt + jnp.log(beta), ls + jnp.log1p(-beta))
    kl_p = jnp.sum(jnp.exp(lt) * (lt - lm), axis=-1)
    kl_q = jnp.sum(jnp.exp(ls) * (ls - lm), axis=-1)
    return beta * kl_p + (1.0 - beta) * kl_q


def _contenders(beta: float, n: int, v: int) -> dict[str, Any]:
    """name -> per-token divergence ``(student, teacher) -> [N]``."""
    chunk = _cpu_chunk(n, v)
    out: dict[str, Any] = {
        "jaxloss": lambda s, t: ops.distillation_divergence(s, t, beta=beta),
        "jaxloss_streaming": lambda s, t: ops.distillation_divergence(
            s, t, beta=beta, vocab_chunk=chunk
        ),
        "autodiff": lambda s, t: ops.distillation_divergence_autodiff(s, t, beta=beta),
        "plain_jnp": lambda s, t: _plain(s, t, beta),
    }
    if beta == 0.0:
        try:
            import optax

            out["optax"] = lambda s, t: optax.losses.kl_divergence_with_log_targets(
                jax.nn.log_softmax(s, axis=-1), jax.nn.log_softmax(t, axis=-1)
            )
        except ImportError:  # pragma: no cover - optax is a bench dependency
            pass
    return out


def _reference(s: np.ndarray, t: np.ndarray, beta: float) -> np.ndarray:
    def log_softmax(x):
        x = x.astype(np.float64)
        m = x.max(-1, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))

    ls, lt = log_softmax(s), log_softmax(t)
    p, q = np.exp(lt), np.exp(ls)
    if beta == 0.0:
        return (p * (lt - ls)).sum(-1)
    if beta == 1.0:
        return (q * (ls - lt)).sum(-1)
    lm = np.log(beta * p + (1 - beta) * q)
    return beta * (p * (lt - lm)).sum(-1) + (1 - beta) * (q * (ls - lm)).sum(-1)


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    n, v = QUICK if quick else FULL
    rounds = rounds or (5 if quick else 3)
    key_s, key_t = jax.random.split(jax.random.key(0))
    student = jax.random.normal(key_s, (n, v), jnp.float32) * 3.0
    teacher = jax.random.normal(key_t, (n, v), jnp.float32) * 3.0
    s_np, t_np = np.asarray(student[:CHECK_ROWS]), np.asarray(teacher[:CHECK_ROWS])
    rows: list[dict[str, Any]] = []
    for beta in BETAS:
        contenders = _contenders(beta, n, v)
        reference = _reference(s_np, t_np, beta)
        fns, temp, errs = {}, {}, {}
        for name, loss_fn in contenders.items():

            def objective(s, t, loss_fn=loss_fn):
                return jnp.mean(loss_fn(s, t))

            step = jax.value_and_grad(objective)
            tb = _harness.temp_bytes(step, student, teacher)
            temp[name] = None if tb is None else tb / 2**20
            jitted = jax.jit(step)
            fns[name] = lambda jitted=jitted: jitted(student, teacher)
            per_token = np.asarray(jax.jit(loss_fn)(student[:CHECK_ROWS], teacher[:CHECK_ROWS]))
            errs[name] = float(np.max(np.abs(per_token - reference)))
        times = _harness.time_interleaved(fns, rounds=rounds, warmup=1)
        base_ms, base_mem = times["plain_jnp"] * 1e3, temp["plain_jnp"]
        label = {0.0: "forward KL", 0.5: "JSD beta=0.5", 1.0: "reverse KL"}[beta]
        for name in fns:
            ms = times[name] * 1e3
            rows.append(
                {
                    "suite": SUITE,
                    "case": f"{label} fwd+bwd N={n} V={v}",
                    "dtype": "float32",
                    "contender": name,
                    "median_ms": round(ms, 2),
                    "temp_mib": None if temp[name] is None else round(temp[name], 3),
                    "speedup_vs_plain": round(base_ms / ms, 3),
                    "mem_vs_plain": (
                        None
                        if temp[name] is None or not base_mem
                        else round(temp[name] / base_mem, 4)
                    ),
                    "max_abs_err": float(f"{errs[name]:.3g}"),
                }
            )
        del fns
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Per case: the kernel's speed and temp memory relative to the plain jnp formula."""
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows):
        by = {r["contender"]: r for r in rows if r["case"] == case}
        ours, plain = by.get("jaxloss"), by.get("plain_jnp")
        if ours is None or plain is None:
            continue
        lines.append(
            f"- {case}: {ours['speedup_vs_plain']}x the plain formula's speed, temp "
            f"{ours['temp_mib']} MiB vs {plain['temp_mib']} MiB ({ours['mem_vs_plain']}x)"
        )
    return "\n".join(lines)


COLUMNS = (
    "case",
    "contender",
    "median_ms",
    "temp_mib",
    "speedup_vs_plain",
    "mem_vs_plain",
    "max_abs_err",
)


def _big_readers(hlo: str, shape: str) -> list[str]:
    """Instructions of the compiled entry computation that read an operand of ``shape``."""
    entry = hlo[hlo.index("ENTRY") :]
    params = re.findall(r"(\w[\w.]*): " + re.escape(shape), entry.splitlines()[0])
    shapes: dict[str, str] = {p: shape for p in params}
    tuples: dict[str, list[str]] = {}
    readers = []
    pattern = re.compile(r"\s*(?:ROOT\s+)?%(\S+)\s*=\s*(\S+?)(?:\{[^}]*\})?\s+([\w\-]+)\((.*)")
    for line in entry.splitlines()[1:]:
        loop = re.match(r"\s*(?:ROOT\s+)?%(\S+)\s*=.*\swhile\(%([\w.\-]+)\)", line)
        if loop:
            big = [o for o in tuples.get(loop.group(2), []) if shapes.get(o, "").startswith(shape)]
            if big:
                readers.append(
                    f"{loop.group(1)} (the streaming loop; each step reads a chunk) reads "
                    + ", ".join(big)
                )
            continue
        tup = re.match(r"\s*(?:ROOT\s+)?%(\S+)\s*=\s*\(.*\)\s+tuple\((.*)\)", line)
        if tup:
            tuples[tup.group(1)] = re.findall(r"%([\w.\-]+)", tup.group(2))
            continue
        m = pattern.match(line)
        if not m:
            continue
        name, out_shape, op, rest = m.groups()
        shapes[name] = out_shape
        if op in ("parameter", "get-tuple-element", "bitcast", "tuple"):
            continue
        operands = re.findall(r"%([\w.\-]+)", rest.split(")")[0])
        big = [o for o in operands if shapes.get(o, "").startswith(shape)]
        if big:
            readers.append(f"{name} ({op} -> {out_shape}) reads {', '.join(big)}")
    return readers


def hlo_passes(n: int = 1024, v: int = 8192) -> str:
    """Which compiled instructions read the ``[n, v]`` inputs, per case, forward and fwd+bwd."""
    x = jnp.zeros((n, v), jnp.float32)
    lines = [f"jax {jax.__version__}, backend {jax.default_backend()}, N={n} V={v}"]
    for beta in BETAS:
        for chunk in (_cpu_chunk(n, v), v):

            def forward(s, t, beta=beta, chunk=chunk):
                return jnp.mean(ops.distillation_divergence(s, t, beta=beta, vocab_chunk=chunk))

            steps = (("forward", forward), ("value_and_grad", jax.value_and_grad(forward)))
            for label, fn in steps:
                hlo = jax.jit(fn).lower(x, x).compile().as_text()
                readers = _big_readers(hlo, f"f32[{n},{v}]")
                lines.append(
                    f"beta={beta} vocab_chunk={chunk} {label}: {len(readers)} readers of [N, V]"
                )
                lines.extend(f"    {r}" for r in readers)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N, V = {QUICK} instead of {FULL}")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--hlo", action="store_true", help="print the passes over [N, V]")
    args = parser.parse_args(argv)
    if args.hlo:
        print(hlo_passes())
        return 0
    rows = run(quick=args.quick, rounds=args.rounds)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}")
    print(_harness.format_table(rows, COLUMNS))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
