"""Flax NNX: train a model with a jaxloss class handle.

A small ``nnx.Module`` regressor is fitted to a noisy 1-D curve in which 10% of the training
targets are gross outliers. ``jaxloss.Huber(delta=...)`` -- a frozen, hashable loss object -- is
passed straight into an ``nnx.jit`` train step next to the model and the ``nnx.Optimizer``. The
same model trained with ``jaxloss.MeanSquaredError()`` is shown for contrast: the outliers pull it
away from the clean curve, Huber stays close.

Run ``python examples/flax_nnx.py`` (add ``--tiny`` or set ``JAXLOSS_TINY=1`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np
import optax
from flax import nnx

import jaxloss


class Regressor(nnx.Module):
    def __init__(self, hidden: int, *, rngs: nnx.Rngs):
        self.hidden1 = nnx.Linear(1, hidden, rngs=rngs)
        self.hidden2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.tanh(self.hidden1(x))
        x = nnx.tanh(self.hidden2(x))
        return self.out(x)


def make_data(n: int, seed: int = 0):
    """``x`` in [-3, 3], clean ``sin(x)`` curve, and training targets with 10% outliers."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, (n, 1)).astype(np.float32)
    clean = np.sin(x)
    noisy = clean + rng.normal(0.0, 0.1, clean.shape)
    outliers = rng.random(n) < 0.1
    noisy[outliers] += rng.choice([-1.0, 1.0], outliers.sum())[:, None] * rng.uniform(
        3.0, 6.0, (outliers.sum(), 1)
    )
    return x, noisy.astype(np.float32), clean.astype(np.float32)


@nnx.jit(static_argnums=0)
def train_step(loss: jaxloss.Loss, model: Regressor, optimizer: nnx.Optimizer, x, y):
    """One optimisation step; ``loss`` is static (hashable), so each loss compiles once."""

    def objective(model: Regressor) -> jax.Array:
        return loss(y, model(x))

    value, grads = nnx.value_and_grad(objective)(model)
    optimizer.update(model, grads)
    return value


@nnx.jit
def clean_error(model: Regressor, x, clean) -> jax.Array:
    """Mean absolute error against the outlier-free curve."""
    return jaxloss.MeanAbsoluteError()(clean, model(x))


@nnx.jit(static_argnums=(0, 1))
def create(hidden: int, steps: int) -> tuple[Regressor, nnx.Optimizer]:
    """Model and optimizer, initialised in one compiled call (not op by op)."""
    model = Regressor(hidden, rngs=nnx.Rngs(0))
    schedule = optax.cosine_decay_schedule(1e-2, steps)
    return model, nnx.Optimizer(model, optax.adam(schedule), wrt=nnx.Param)


def fit(loss: jaxloss.Loss, x, y, clean, *, steps: int, hidden: int, batch: int) -> float:
    model, optimizer = create(hidden, steps)
    rng = np.random.default_rng(1)
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x), batch)
        value = train_step(loss, model, optimizer, x[idx], y[idx])
        if step % max(1, steps // 5) == 0:
            err = clean_error(model, x, clean)
            print(f"  step {step:4d}  loss {float(value):.4f}  clean-curve MAE {float(err):.4f}")
    return float(clean_error(model, x, clean))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n, steps, hidden, batch = (256, 20, 16, 64) if tiny else (2048, 500, 32, 256)

    x, y, clean = make_data(n)
    results: dict[str, float] = {}
    for loss in (jaxloss.Huber(delta=0.5), jaxloss.MeanSquaredError()):
        print(f"training with {loss!r}")
        results[str(loss.name)] = fit(loss, x, y, clean, steps=steps, hidden=hidden, batch=batch)
    print(
        "clean-curve MAE: "
        + ", ".join(f"{name} {err:.4f}" for name, err in results.items())
        + "  (lower is better; Huber ignores the outliers' pull)"
    )
    return results


if __name__ == "__main__":
    main()
