"""Mixed precision: bfloat16 parameters and activations, a float32 loss.

The usual recipe: keep float32 *master* parameters for the optimizer, cast them (and the inputs) to
bfloat16 for the forward pass, and compute the loss in float32. jaxloss does the last part by
default: a class with ``dtype=None`` upcasts bfloat16 logits to float32 for the log-softmax and
the reduction, and hands the gradient back in the logits' own dtype (bfloat16), so the backward
pass through the network stays in bfloat16 while the gradient w.r.t. the float32 master parameters
arrives in float32. The same model trained entirely in float32 is shown for comparison, and so is
what a loss computed *in* bfloat16 (``dtype="bfloat16"``) loses.

Run ``python examples/mixed_precision.py`` (add ``--tiny`` or set ``JAXLOSS_TINY=1`` for a smoke
run).
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

CLASSES, FEATURES, HIDDEN = 10, 32, 128

loss_fn = jaxloss.SparseCategoricalCrossentropy(from_logits=True)  # computes in float32


def make_data(n: int, seed: int = 0):
    """Overlapping Gaussian clusters: float32 ``[n, FEATURES]``, int32 ``[n]``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, (CLASSES, FEATURES))
    labels = rng.integers(0, CLASSES, n)
    x = centers[labels] + rng.normal(0.0, 2.0, (n, FEATURES))
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), labels.astype(np.int32)


def init_params(seed: int) -> dict[str, jax.Array]:
    """float32 master parameters (drawn with NumPy)."""
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(0.0, np.sqrt(2.0 / FEATURES), (FEATURES, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0.0, np.sqrt(1.0 / HIDDEN), (HIDDEN, CLASSES)),
        "b2": np.zeros(CLASSES),
    }
    return {name: jnp.asarray(value, jnp.float32) for name, value in params.items()}


@jax.jit
def inspect_dtypes(params, x, y):
    """Logits, the loss, and the gradients w.r.t. the logits and the master parameters."""
    logits = forward(params, x, jnp.bfloat16)
    loss, dlogits = jax.value_and_grad(lambda z: loss_fn(y, z))(logits)
    grads = jax.grad(lambda p: loss_fn(y, forward(p, x, jnp.bfloat16)))(params)
    in_bf16 = jaxloss.SparseCategoricalCrossentropy(from_logits=True, dtype="bfloat16")
    return logits, loss, dlogits, grads, in_bf16(y, logits)


def forward(params: dict[str, jax.Array], x: jax.Array, compute_dtype) -> jax.Array:
    """Logits in ``compute_dtype``: parameters and activations are cast before any math."""
    p = jax.tree.map(lambda a: a.astype(compute_dtype), params)
    h = jax.nn.relu(x.astype(compute_dtype) @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"]


def make_train_step(optimizer: optax.GradientTransformation, compute_dtype):
    def objective(params, x, y):
        logits = forward(params, x, compute_dtype)  # bfloat16 in the mixed run
        return loss_fn(y, logits)  # float32 scalar whatever the logits' dtype

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(objective)(params, x, y)  # grads: float32 (master)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return train_step


@jax.jit(static_argnums=3)
def evaluate(params, x, y, compute_dtype):
    logits = forward(params, x, compute_dtype)
    return jnp.mean(jnp.argmax(logits, -1) == y)


def train(compute_dtype, x, y, *, steps: int, batch: int) -> tuple[dict, float]:
    params = init_params(0)
    optimizer = optax.adam(2e-3)
    opt_state = jax.jit(optimizer.init)(params)
    train_step = make_train_step(optimizer, compute_dtype)
    rng = np.random.default_rng(1)
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x), batch)
        params, opt_state, loss = train_step(params, opt_state, x[idx], y[idx])
        if step % max(1, steps // 4) == 0:
            print(f"  [{jnp.dtype(compute_dtype).name}] step {step:4d}  loss {float(loss):.4f}")
    return params, float(loss)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n, steps, batch = (512, 10, 64) if tiny else (8192, 300, 256)
    x, y = make_data(n)

    # What flows where: logits and their gradient in bfloat16, the loss in float32.
    logits, loss, dlogits, grads, loss_bf16 = inspect_dtypes(init_params(0), x[:batch], y[:batch])
    print(
        f"logits {logits.dtype}, loss {loss.dtype}, d loss/d logits {dlogits.dtype}, "
        f"d loss/d master params {grads['w1'].dtype}"
    )

    # What a bfloat16 loss computation would cost on the same bfloat16 logits.
    z = np.asarray(logits.astype(jnp.float32), np.float64)  # the same bf16 values, in float64
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    exact = np.mean(lse - z[np.arange(batch), y[:batch]])
    print(
        f"loss on bfloat16 logits: computed in float32 {float(loss):.6f}, "
        f"in bfloat16 {float(loss_bf16):.6f} (float64 reference {float(exact):.6f})"
    )

    print("training (bfloat16 forward, float32 loss and master weights):")
    mixed, mixed_loss = train(jnp.bfloat16, x, y, steps=steps, batch=batch)
    print("training (float32 throughout):")
    full, full_loss = train(jnp.float32, x, y, steps=steps, batch=batch)
    result = {
        "mixed_accuracy": float(evaluate(mixed, x, y, jnp.bfloat16)),
        "float32_accuracy": float(evaluate(full, x, y, jnp.float32)),
        "mixed_loss": mixed_loss,
        "float32_loss": full_loss,
        "loss_dtype": loss.dtype.name,
        "dlogits_dtype": dlogits.dtype.name,
    }
    print(
        f"accuracy: mixed precision {result['mixed_accuracy']:.3f}, "
        f"float32 {result['float32_accuracy']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
