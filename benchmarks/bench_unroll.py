"""Steps per loop iteration of the CTC and RNN-T recursions: the sweep behind ``SCAN_UNROLL``.

Usage (one process per setting: ``ctc_loss``'s inner ``jit`` keeps the first trace of a shape)::

    .venv/bin/python -m benchmarks.bench_unroll            # k = 1, 8, 16, 32 in child processes
    .venv/bin/python -m benchmarks.bench_unroll --k 16     # one setting, in this process

Each setting patches ``jaxloss.ops._common.SCAN_UNROLL`` for the default backend, then times the
jitted value and gradient of the mean loss: CTC interleaved with optax's at the issue's two
shapes, RNN-T alone at its two; the first call (tracing and compiling) is timed separately. On a
GPU this gave the table in ``benchmarks/results/gpu_h200.md``; on the CPU, where the setting is 1,
unrolling was no faster.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CTC_SHAPES = ((64, 150, 28, 40), (8, 1000, 512, 150))
RNNT_SHAPES = ((8, 200, 50, 256), (4, 500, 100, 1024))


def _median_ms(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Interleaved median of each already-compiled callable, in milliseconds."""
    from benchmarks import _harness

    seconds = _harness.time_interleaved(fns, rounds=rounds, warmup=0)
    return {name: value * 1e3 for name, value in seconds.items()}


def sweep_one(k: int, rounds: int = 15) -> list[str]:
    """Lines of results for ``k`` steps per iteration (patches SCAN_UNROLL in this process)."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxloss import ops
    from jaxloss.ops import _common

    _common.SCAN_UNROLL[jax.default_backend()] = k
    key_x, key_y = jax.random.split(jax.random.key(0))
    lines = []

    def step(loss):
        return jax.jit(jax.value_and_grad(lambda x: jnp.mean(loss(x))))

    for b, t, c, n in CTC_SHAPES:
        x = jax.random.normal(key_x, (b, t, c)) * 2
        y = jax.random.randint(key_y, (b, n), 1, c)
        ours = step(lambda x, y=y: ops.ctc_loss(x, y))
        pads = (jnp.zeros((b, t)), jnp.zeros((b, n)))
        theirs = step(lambda x, y=y, pads=pads: optax.ctc_loss(x, pads[0], y, pads[1]))
        start = time.perf_counter()
        jax.block_until_ready(ours(x))
        compile_s = time.perf_counter() - start
        jax.block_until_ready(theirs(x))
        fns = {"ours": lambda f=ours, x=x: f(x), "optax": lambda f=theirs, x=x: f(x)}
        ms = _median_ms(fns, rounds)
        lines.append(
            f"k={k} CTC B={b} T={t} C={c} L={n}: {ms['ours']:.2f} ms, optax {ms['optax']:.2f} ms,"
            f" {ms['optax'] / ms['ours']:.2f}x optax's speed; first call {compile_s:.1f} s"
        )
    for b, t, u, v in RNNT_SHAPES:
        x = jax.random.normal(key_x, (b, t, u + 1, v))
        y = jax.random.randint(key_y, (b, u), 1, v)
        ours = step(lambda x, y=y: ops.rnnt_loss(x, y))
        start = time.perf_counter()
        jax.block_until_ready(ours(x))
        compile_s = time.perf_counter() - start
        ms = _median_ms({"ours": lambda f=ours, x=x: f(x)}, max(3, rounds * 2 // 3))
        lines.append(
            f"k={k} RNN-T B={b} T={t} U={u} V={v}: {ms['ours']:.2f} ms;"
            f" first call {compile_s:.1f} s"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=None, help="one setting, in this process")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    if args.k is not None:
        for line in sweep_one(args.k, args.rounds):
            print(line, flush=True)
        return 0
    for k in (1, 8, 16, 32):
        cmd = [sys.executable, "-m", "benchmarks.bench_unroll", "--k", str(k)]
        subprocess.run([*cmd, "--rounds", str(args.rounds)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
