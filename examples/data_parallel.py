"""Data-parallel training with ``jax.shard_map`` and ``axis_name``: the global-mean reduction.

A per-token classifier is trained on padded sequences split across devices. Padding tokens carry
the label ``-1`` and are skipped with ``SparseCategoricalCrossentropy(ignore_class=-1)``. Devices
hold different numbers of real tokens, so the usual recipe -- average each device's mean loss --
weights a device with 3 real tokens like one with 300. With ``axis_name="data"`` on the loss, every
sum and count of the reduction is ``psum``-ed across devices: the value (and the gradient) is the
single-device value on the global batch, the mean over *all* valid tokens.

On CPU the script asks XLA for 8 host devices (unless ``XLA_FLAGS`` already sets a count), so it
shows real sharding on a laptop. Run ``python examples/data_parallel.py`` (add ``--tiny`` or set
``JAXLOSS_TINY=1`` for a smoke run).
"""

from __future__ import annotations

import os
import sys

if "jax" not in sys.modules and "device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxloss

PAD = -1
FEATURES, CLASSES, HIDDEN = 8, 4, 32


def make_batch(rng: np.random.Generator, batch: int, seq: int, teacher: tuple):
    """Padded sequences sorted by length, so devices get very different numbers of real tokens.

    A token's label comes from a fixed random "teacher" network, but is replaced by a random class
    with a probability that grows along the sequence: long sequences are harder, so devices that
    hold them have a higher mean loss -- the case where a mean of per-device means goes wrong.
    """
    x = rng.normal(size=(batch, seq, FEATURES)).astype(np.float32)
    labels = np.argmax(np.tanh(x @ teacher[0]) @ teacher[1], axis=-1).astype(np.int32)
    noisy = rng.random((batch, seq)) < 0.8 * np.arange(seq) / seq
    labels[noisy] = rng.integers(0, CLASSES, noisy.sum())
    lengths = np.sort(rng.integers(1, seq + 1, batch))
    labels[np.arange(seq)[None, :] >= lengths[:, None]] = PAD
    return x, labels


def init_params(seed: int) -> dict[str, jax.Array]:
    """Replicated parameters (drawn with NumPy)."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(0.0, 1.0 / np.sqrt(FEATURES), (FEATURES, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0.0, 1.0 / np.sqrt(HIDDEN), (HIDDEN, CLASSES)),
        "b2": np.zeros(CLASSES),
    }
    return {name: jnp.asarray(value, jnp.float32) for name, value in params.items()}


def model(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Per-token logits ``[batch, seq, classes]``."""
    return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


# One loss object for the single-device reference, one that reduces across the "data" axis.
global_loss = jaxloss.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
sharded_loss = jaxloss.SparseCategoricalCrossentropy(
    from_logits=True, ignore_class=PAD, axis_name="data"
)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n_dev = jax.device_count()
    per_device, seq, steps = (4, 16, 10) if tiny else (16, 64, 200)
    batch = n_dev * per_device

    mesh = Mesh(np.array(jax.devices()), ("data",))
    data = NamedSharding(mesh, P("data"))
    print(f"{n_dev} devices ({jax.devices()[0].platform}), global batch {batch} sequences")
    rng = np.random.default_rng(0)
    teacher = (rng.normal(size=(FEATURES, HIDDEN)), rng.normal(size=(HIDDEN, CLASSES)))
    params = init_params(0)

    # --- 1. Training: the gradient taken inside shard_map is already the global gradient. ---
    optimizer = optax.adam(1e-2)
    # Replicate the parameters and optimizer state on the mesh once, up front: the train step then
    # returns them with the same sharding, and the compiled step is reused from the first call.
    replicated = NamedSharding(mesh, P())
    params = jax.device_put(params, replicated)
    opt_state = jax.device_put(jax.jit(optimizer.init)(params), replicated)

    def step(params, opt_state, x, labels):
        def objective(params):
            logits = model(params, x)
            correct = jnp.sum((jnp.argmax(logits, -1) == labels) & (labels != PAD))
            return sharded_loss(labels, logits), correct

        (loss, correct), grads = jax.value_and_grad(objective, has_aux=True)(params)
        # shard_map tracks that `params` is replicated, so `grads` already holds the sum over
        # devices: no pmean needed. (Under jax.pmap, write `grads = lax.pmean(grads, "data")`.)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        accuracy = lax.psum(correct, "data") / lax.psum(jnp.sum(labels != PAD), "data")
        return optax.apply_updates(params, updates), opt_state, loss, accuracy

    train_step = jax.jit(
        jax.shard_map(
            step,
            mesh=mesh,
            in_specs=(P(), P(), P("data"), P("data")),
            out_specs=(P(), P(), P(), P()),
        )
    )
    for i in range(1, steps + 1):
        x, labels = jax.device_put(make_batch(rng, batch, seq, teacher), data)
        params, opt_state, loss, accuracy = train_step(params, opt_state, x, labels)
        if i % max(1, steps // 5) == 0:
            print(f"step {i:4d}  loss {float(loss):.4f}  token accuracy {float(accuracy):.3f}")

    # --- 2. The reduction: global mean over valid tokens vs the mean of per-device means. ---
    x, labels = make_batch(rng, batch, seq, teacher)

    def per_device_values(params, x, labels):
        logits = model(params, x)
        with_axis = sharded_loss(labels, logits)  # psum of sums / psum of valid counts
        naive = lax.pmean(global_loss(labels, logits), "data")  # mean of per-device means
        grads = jax.grad(lambda p: sharded_loss(labels, model(p, x)))(params)
        return with_axis, naive, grads

    with_axis, naive, g_sharded = jax.jit(
        jax.shard_map(
            per_device_values, mesh=mesh, in_specs=(P(), P("data"), P("data")), out_specs=P()
        )
    )(params, x, labels)
    reference, g_single = jax.jit(
        jax.value_and_grad(lambda p: global_loss(labels, model(p, x)))  # one device, all data
    )(params)
    grad_diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(g_single), jax.tree.leaves(g_sharded), strict=True)
    )
    valid = (labels != PAD).reshape(n_dev, -1).sum(axis=1)
    print(f"valid tokens per device: {valid.tolist()}")
    print(f"single-device loss on the global batch : {float(reference):.6f}")
    print(f"shard_map + axis_name='data'           : {float(with_axis):.6f}")
    print(f"mean of per-device means (wrong)       : {float(naive):.6f}")
    print(f"max |sharded grad - single-device grad|: {grad_diff:.2e}")
    return {
        "reference": float(reference),
        "with_axis": float(with_axis),
        "naive": float(naive),
        "final_loss": float(loss),
        "accuracy": float(accuracy),
        "grad_diff": grad_diff,
    }


if __name__ == "__main__":
    main()
