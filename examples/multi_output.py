"""Multi-output model: a weighted sum of losses over a dict of outputs, plus an L2 penalty.

The functional analogue of Keras'

    model.compile(loss={"digit": ..., "size": ...}, loss_weights={"digit": 1.0, "size": 0.5})

is a dict of jaxloss objects and a dict of weights, summed over the model's dict of outputs. The
analogue of ``add_loss`` (a penalty that does not depend on the targets) is just another term: here
an L2 penalty over every kernel in the parameter pytree. Each term is returned as an auxiliary
output for logging.

The synthetic task: each input is a noisy point cloud summary; one head classifies its cluster
(``SparseCategoricalCrossentropy``), the other regresses its scale (``Huber``).

Run ``python examples/multi_output.py`` (add ``--tiny`` or set ``JAXLOSS_TINY=1`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

CLASSES, FEATURES, HIDDEN = 4, 16, 64

# The two dicts of Keras' compile(loss=..., loss_weights=...), keyed like the model's outputs.
LOSSES = {
    "cluster": jaxloss.SparseCategoricalCrossentropy(from_logits=True),
    "scale": jaxloss.Huber(delta=1.0),
}
LOSS_WEIGHTS = {"cluster": 1.0, "scale": 0.5}
L2 = 1e-4  # the add_loss-style penalty's weight


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, (CLASSES, FEATURES))
    cluster = rng.integers(0, CLASSES, n)
    scale = rng.uniform(0.5, 2.0, n)
    x = scale[:, None] * centers[cluster] + rng.normal(0.0, 1.0, (n, FEATURES))
    targets = {"cluster": cluster.astype(np.int32), "scale": scale[:, None].astype(np.float32)}
    return x.astype(np.float32), targets


def init_params(seed: int) -> dict:
    """A trunk and one head per output, ``{"kernel", "bias"}`` each (drawn with NumPy)."""
    rng = np.random.default_rng(seed)

    def dense(n_in, n_out):
        kernel = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_out)).astype(np.float32)
        return {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(np.zeros(n_out, np.float32))}

    return {
        "trunk": dense(FEATURES, HIDDEN),
        "cluster": dense(HIDDEN, CLASSES),
        "scale": dense(HIDDEN, 1),
    }


def model(params: dict, x: jax.Array) -> dict[str, jax.Array]:
    """A shared trunk and one head per output: ``{"cluster": logits, "scale": [batch, 1]}``."""
    h = jax.nn.gelu(x @ params["trunk"]["kernel"] + params["trunk"]["bias"])
    return {name: h @ params[name]["kernel"] + params[name]["bias"] for name in LOSSES}


def l2_penalty(params: dict) -> jax.Array:
    """Sum of squares of every ``kernel`` leaf (biases are not penalised)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    squares = [
        jnp.sum(jnp.square(leaf))
        for path, leaf in leaves
        if path[-1] == jax.tree_util.DictKey("kernel")
    ]
    return jnp.sum(jnp.stack(squares)) if squares else jnp.zeros(())


def total_loss(params: dict, x: jax.Array, targets: dict) -> tuple[jax.Array, dict]:
    outputs = model(params, x)
    terms = {name: loss(targets[name], outputs[name]) for name, loss in LOSSES.items()}
    terms["l2"] = l2_penalty(params)
    total = sum(LOSS_WEIGHTS[name] * terms[name] for name in LOSSES) + L2 * terms["l2"]
    return total, terms


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n, steps, batch = (256, 10, 64) if tiny else (4096, 400, 128)
    x, targets = make_data(n)

    params = init_params(0)
    optimizer = optax.adam(3e-3)
    opt_state = jax.jit(optimizer.init)(params)

    @jax.jit
    def train_step(params, opt_state, x, targets):
        (total, terms), grads = jax.value_and_grad(total_loss, has_aux=True)(params, x, targets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, total, terms

    rng = np.random.default_rng(1)
    for step in range(1, steps + 1):
        idx = rng.integers(0, n, batch)
        batch_targets = {name: target[idx] for name, target in targets.items()}
        params, opt_state, total, terms = train_step(params, opt_state, x[idx], batch_targets)
        if step % max(1, steps // 5) == 0:
            parts = "  ".join(f"{k} {float(v):.4f}" for k, v in terms.items())
            print(f"step {step:4d}  total {float(total):.4f}  ({parts})")

    @jax.jit
    def evaluate(params, x, targets):
        outputs = model(params, x)
        accuracy = jnp.mean(jnp.argmax(outputs["cluster"], -1) == targets["cluster"])
        return accuracy, jaxloss.MeanAbsoluteError()(targets["scale"], outputs["scale"])

    accuracy, scale_mae = map(float, evaluate(params, x, targets))
    print(f"cluster accuracy {accuracy:.3f}, scale MAE {scale_mae:.3f}")
    return {"total": float(total), "accuracy": accuracy, "scale_mae": scale_mae}


if __name__ == "__main__":
    main()
