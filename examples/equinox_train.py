"""Equinox: train a model with a jaxloss *function* handle and ``eqx.filter_jit``.

Function handles (``jaxloss.binary_crossentropy``) follow Keras: ``(y_true, y_pred, **options)``
in, the *unreduced* per-sample loss out. Reduce it however the training loop needs -- here a plain
``jnp.mean`` -- which is what an optax-style loss function usually looks like. The model is an
``eqx.nn.MLP`` classifying the two-moons dataset (synthetic, generated here).

Run ``python examples/equinox_train.py`` (add ``--tiny`` or set ``JAXLOSS_TINY=1`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss


def make_moons(n: int, noise: float = 0.15, seed: int = 0):
    """Two interleaved half-circles: float32 ``[n, 2]`` points, float32 ``[n, 1]`` labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    t = rng.uniform(0.0, np.pi, n)
    x = np.where(
        labels[:, None] == 0,
        np.stack([np.cos(t), np.sin(t)], axis=1),
        np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1),
    )
    x = x + rng.normal(0.0, noise, x.shape)
    return x.astype(np.float32), labels[:, None].astype(np.float32)


def loss_fn(model: eqx.nn.MLP, x: jax.Array, y: jax.Array) -> jax.Array:
    logits = jax.vmap(model)(x)  # [batch, 1]
    per_sample = jaxloss.binary_crossentropy(y, logits, from_logits=True)  # [batch]
    return jnp.mean(per_sample)


@eqx.filter_jit
def train_step(model, opt_state, optimizer, x, y):
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    model = eqx.apply_updates(model, updates)
    return model, opt_state, loss


@eqx.filter_jit
def evaluate(model, x, y):
    """Full-data loss and accuracy."""
    return loss_fn(model, x, y), jnp.mean((jax.vmap(model)(x) > 0) == (y > 0.5))


@eqx.filter_jit
def make_model(width: int, key: jax.Array) -> eqx.nn.MLP:
    """An MLP initialised in one compiled call (ints are static under filter_jit)."""
    return eqx.nn.MLP(2, 1, width_size=width, depth=2, activation=jax.nn.gelu, key=key)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n, steps, width, batch = (256, 20, 16, 64) if tiny else (2000, 300, 32, 128)

    x, y = make_moons(n)
    model = make_model(width, jax.random.key(0))
    optimizer = optax.adam(1e-2)
    opt_state = eqx.filter_jit(optimizer.init)(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(1)
    first: float | None = None
    for step in range(1, steps + 1):
        idx = rng.integers(0, n, batch)
        model, opt_state, loss = train_step(model, opt_state, optimizer, x[idx], y[idx])
        first = float(loss) if first is None else first
        if step % max(1, steps // 6) == 0:
            _, acc = evaluate(model, x, y)
            print(f"step {step:4d}  loss {float(loss):.4f}  accuracy {float(acc):.3f}")
    full_loss, acc = evaluate(model, x, y)
    final = {"first_loss": float("nan") if first is None else first, "loss": float(full_loss)}
    final["accuracy"] = float(acc)
    print(f"final: full-data loss {final['loss']:.4f}, accuracy {final['accuracy']:.3f}")
    return final


if __name__ == "__main__":
    main()
