"""CLIP and SigLIP, forward + backward: per-device memory and time against the naive ``[B, B]``.

Every contender computes the mean loss of a global batch of ``B`` image-text pairs
(``[B, D]`` embeddings each, L2-normalised) and its gradient with respect to both embeddings and
the logit scale:

* ``naive``              -- each device all-gathers both embeddings and builds the global
  ``[B, B]`` logits (what a straightforward data-parallel CLIP does): *the* baseline;
* ``all_gather``         -- :func:`jaxloss.ops.contrastive.clip_loss` with
  ``collective="all_gather"``: local rows against the gathered texts, ``[b, B]`` per device;
* ``all_gather_chunk``   -- the same with ``chunk_size`` texts per block, ``[b, chunk]``;
* ``ring``               -- ``collective="ring"``: text blocks passed around with ``ppermute``,
  ``[b, b]`` per step;
* ``ring_chunk``         -- the ring with ``chunk_size`` texts per block inside each step.

The ``sharded`` case runs inside ``jax.shard_map`` over 8 host CPU devices (``b = B / 8`` pairs per
device; the script sets ``XLA_FLAGS`` itself); the ``single`` case compares the naive loss with
the chunked kernel on one device. ``temp_mib`` is XLA's compiled temp allocation of the jitted
``value_and_grad`` (per device: the SPMD module is the per-device program); ``mem_vs_naive`` is its
ratio to the naive contender's. ``max_abs_err`` compares each loss with the naive one.

Run standalone (full size: B=4096, D=512)::

    .venv/bin/python -m benchmarks.bench_contrastive [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

if "jax" not in sys.modules:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from benchmarks import _harness
from jaxloss.ops import contrastive

SUITE = "contrastive"
FULL = (4096, 512, 512)  # B, D, chunk
QUICK = (512, 64, 64)


def _naive(x: jax.Array, y: jax.Array, scale: jax.Array) -> jax.Array:
    logits = scale * x @ y.T
    diag = jnp.diagonal(logits)
    rows = jax.nn.logsumexp(logits, axis=1) - diag
    cols = jax.nn.logsumexp(logits, axis=0) - diag
    return 0.5 * jnp.mean(rows + cols)


def _inputs(batch: int, dim: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, dim)).astype(np.float32)
    y = x + 0.5 * rng.normal(size=(batch, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(10.0, jnp.float32)


def _sharded(batch: int, chunk: int) -> dict[str, Any]:
    mesh = Mesh(np.array(jax.devices()[:8]), ("d",))

    def naive(x, y, s):
        xg = jax.lax.all_gather(x, "d", tiled=True)
        yg = jax.lax.all_gather(y, "d", tiled=True)
        # every device holds the same global loss; pmean makes that visible to shard_map
        return jax.lax.pmean(_naive(xg, yg, s), "d")

    def ours(**kw):
        def local(x, y, s):
            v = contrastive.clip_loss(x, y, logit_scale=s, axis_name="d", **kw)
            return jax.lax.psum(jnp.sum(v), "d") / batch

        return local

    bodies = {
        "naive": naive,
        "all_gather": ours(collective="all_gather"),
        "all_gather_chunk": ours(collective="all_gather", chunk_size=chunk),
        "ring": ours(collective="ring"),
        "ring_chunk": ours(collective="ring", chunk_size=chunk // 8 or 1),
    }
    return {
        name: jax.value_and_grad(
            jax.shard_map(body, mesh=mesh, in_specs=(P("d"), P("d"), P()), out_specs=P()),
            argnums=(0, 1, 2),
        )
        for name, body in bodies.items()
    }


def _single(batch: int, chunk: int) -> dict[str, Any]:
    def ours(x, y, s):
        return jnp.mean(contrastive.clip_loss(x, y, logit_scale=s, chunk_size=chunk))

    return {
        "naive": jax.value_and_grad(_naive, argnums=(0, 1, 2)),
        "chunk": jax.value_and_grad(ours, argnums=(0, 1, 2)),
    }


def _case(case: str, fns: dict[str, Any], args: tuple, rounds: int) -> list[dict[str, Any]]:
    jitted = {name: jax.jit(fn) for name, fn in fns.items()}
    mems = {name: _harness.temp_bytes(fn, *args) for name, fn in fns.items()}
    values = {name: float(f(*args)[0]) for name, f in jitted.items()}
    times = _harness.time_interleaved(
        {name: (lambda f=f: f(*args)) for name, f in jitted.items()}, rounds=rounds, warmup=1
    )
    base_ms, base_mem = times["naive"] * 1e3, mems["naive"]
    rows = []
    for name in fns:
        ms, mem = times[name] * 1e3, mems[name]
        rows.append(
            {
                "suite": SUITE,
                "case": case,
                "dtype": "float32",
                "contender": name,
                "median_ms": round(ms, 2),
                "temp_mib": None if mem is None else round(mem / 2**20, 2),
                "ratio_vs_naive": round(ms / base_ms, 3),
                "mem_vs_naive": None if mem is None or not base_mem else round(mem / base_mem, 4),
                "max_abs_err": float(f"{abs(values[name] - values['naive']):.3g}"),
            }
        )
    return rows


def run(quick: bool = False, rounds: int | None = None) -> list[dict[str, Any]]:
    """Both cases; one row per (case, contender)."""
    batch, dim, chunk = QUICK if quick else FULL
    rounds = rounds or 3
    args = _inputs(batch, dim)
    rows = _case(f"single B={batch} D={dim}", _single(batch, chunk), args, rounds)
    if jax.device_count() >= 8:
        rows += _case(f"sharded 8 dev B={batch} D={dim}", _sharded(batch, chunk), args, rounds)
    return rows


COLUMNS = (
    "case",
    "contender",
    "median_ms",
    "temp_mib",
    "ratio_vs_naive",
    "mem_vs_naive",
    "max_abs_err",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    print(_harness.format_table(run(args.quick, args.rounds), COLUMNS))


if __name__ == "__main__":
    main()
