"""Quickstart: train a small MLP classifier with optax and a jaxloss class handle.

The dataset is three interleaved 2-D spirals (synthetic, generated here). The loss is
``jaxloss.SparseCategoricalCrossentropy(from_logits=True)``: integer labels, raw logits, the Keras
default reduction (mean over the batch). The whole train step -- forward pass, loss, gradient and
optax update -- is one ``jax.jit``-compiled function. Loss and accuracy are printed per epoch and
the curves are saved as a PNG under ``examples/output/``.

Run it with ``make demo`` or ``python examples/quickstart.py``; add ``--tiny`` (or set
``JAXLOSS_TINY=1``) for a few-second smoke run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import jaxloss

OUTPUT_DIR = Path(__file__).resolve().parent / "output"


def make_spirals(n: int, classes: int = 3, noise: float = 0.05, seed: int = 0):
    """``n`` points on ``classes`` interleaved spiral arms: float32 ``[n, 2]``, int32 ``[n]``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    radius = rng.uniform(0.1, 1.0, n)
    angle = 2.5 * np.pi * radius + 2.0 * np.pi * labels / classes
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    return x.astype(np.float32), labels.astype(np.int32)


def init_mlp(seed: int, sizes: list[int]) -> list[dict[str, jax.Array]]:
    """He-initialised dense layers ``[{"w": [in, out], "b": [out]}, ...]`` (drawn with NumPy)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out)).astype(np.float32)
        params.append({"w": jnp.asarray(w), "b": jnp.asarray(np.zeros(fan_out, np.float32))})
    return params


def mlp(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    """Logits ``[batch, classes]``: ReLU hidden layers, linear output."""
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


# A loss object is a frozen dataclass: define it once and close over it in jitted code.
loss_fn = jaxloss.SparseCategoricalCrossentropy(from_logits=True)


def make_steps(optimizer: optax.GradientTransformation):
    def objective(params, x, y):
        logits = mlp(params, x)
        return loss_fn(y, logits), logits

    @jax.jit
    def train_step(params, opt_state, x, y):
        (loss, logits), grads = jax.value_and_grad(objective, has_aux=True)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y)
        return params, opt_state, loss, accuracy

    @jax.jit
    def eval_step(params, x, y):
        loss, logits = objective(params, x, y)
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == y)

    return train_step, eval_step


def save_curves(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, history["loss"], label="train")
    ax_loss.plot(epochs, history["val_loss"], label="test")
    ax_loss.set(xlabel="epoch", ylabel="sparse categorical cross-entropy", title="loss")
    ax_acc.plot(epochs, history["accuracy"], label="train")
    ax_acc.plot(epochs, history["val_accuracy"], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0.0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="where the PNG goes")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"

    n, hidden, epochs, batch_size = (512, 32, 3, 64) if tiny else (6000, 64, 25, 128)
    epochs = args.epochs or epochs
    x, y = make_spirals(n)
    split = int(0.8 * n)
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]

    params = init_mlp(0, [2, hidden, hidden, 3])
    optimizer = optax.adam(5e-3)
    opt_state = jax.jit(optimizer.init)(params)
    train_step, eval_step = make_steps(optimizer)
    rng = np.random.default_rng(1)
    steps_per_epoch = split // batch_size

    history: dict[str, list[float]] = {
        k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy")
    }
    start = time.perf_counter()
    with tqdm(total=epochs * steps_per_epoch, unit="step", desc="training") as bar:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(split)
            losses, accuracies = [], []
            for i in range(steps_per_epoch):
                idx = order[i * batch_size : (i + 1) * batch_size]
                params, opt_state, loss, acc = train_step(
                    params, opt_state, x_train[idx], y_train[idx]
                )
                losses.append(loss)
                accuracies.append(acc)
                bar.update()
            val_loss, val_acc = eval_step(params, x_test, y_test)
            history["loss"].append(float(np.mean(losses)))
            history["accuracy"].append(float(np.mean(accuracies)))
            history["val_loss"].append(float(val_loss))
            history["val_accuracy"].append(float(val_acc))
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", acc=f"{history['accuracy'][-1]:.3f}")
            bar.write(
                f"epoch {epoch:2d}/{epochs}  loss {history['loss'][-1]:.4f}  "
                f"accuracy {history['accuracy'][-1]:.3f}  val_loss {history['val_loss'][-1]:.4f}  "
                f"val_accuracy {history['val_accuracy'][-1]:.3f}"
            )

    png = args.out / "quickstart.png"
    save_curves(history, png)
    print(f"trained {epochs} epochs in {time.perf_counter() - start:.1f} s; curves saved to {png}")
    return history


if __name__ == "__main__":
    main()
