"""A small decoder-only transformer trained with a vocab-parallel fused LM head on a 2 x 4 mesh.

The batch is split over the ``data`` axis and the vocabulary of the output projection over the
``model`` axis: each device holds a quarter of the ``[D, V]`` head weight, and
:func:`jaxloss.ops.linear_cross_entropy` with ``vocab_axis_name="model"`` computes the exact
cross-entropy without ever building ``[tokens, vocab]`` logits, let alone gathering them. The same
pass gives the z-loss, skips padding (``ignore_index``) and returns each token's argmax, from which
the token accuracy comes at no extra cost.

The loss is the exact mean over every real token of the global batch, also with gradient
accumulation: each step runs several micro-batches, sums the per-token losses and the numbers of
real tokens over micro-batches and devices, and divides once. (Averaging per-device or
per-micro-batch means would weight a micro-batch of 3 real tokens like one of 300.)

The corpus is synthetic: sequences of varying length from a random sparse Markov chain (each
token has a few likely successors), padded to a fixed length; the best possible token accuracy is
about 0.7. Labels come from :func:`jaxloss.ops.causal_lm_shift`. The model is written with
Equinox. Loss and accuracy are shown in a progress bar and saved as a PNG under
``examples/output/``.

On CPU the script asks XLA for 8 host devices (unless ``XLA_FLAGS`` already sets a count). Run
``python examples/language_model.py`` (a few minutes), or add ``--tiny`` (or set
``JAXLOSS_TINY=1``) for a smoke run.
"""

from __future__ import annotations

import os
import sys

if "jax" not in sys.modules and "device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

import argparse
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxloss import ops

OUTPUT_DIR = Path(__file__).resolve().parent / "output"
PAD = -100
Z_LOSS = 1e-4
DATA, MODEL = 2, 4  # the mesh


# ----------------------------------------------------------------------------------------------
# data


def make_corpus(vocab: int, seed: int = 0) -> np.ndarray:
    """A random sparse Markov chain: ``[vocab, vocab]`` next-token probabilities."""
    rng = np.random.default_rng(seed)
    probs = np.full((vocab, vocab), 0.1 / vocab)
    for token in range(vocab):
        a, b = rng.choice(vocab, 2, replace=False)
        probs[token, a] += 0.7
        probs[token, b] += 0.2
    return probs


def sample_batch(rng: np.random.Generator, probs: np.ndarray, shape: tuple[int, ...], seq: int):
    """Token ids ``shape + (seq,)`` and a validity mask: each sequence is real up to its length."""
    vocab = probs.shape[0]
    cdf = np.cumsum(probs, axis=1)
    tokens = np.zeros((*shape, seq), np.int32)
    tokens[..., 0] = rng.integers(0, vocab, shape)
    for t in range(1, seq):
        u = rng.random(shape)[..., None]
        row = cdf[tokens[..., t - 1]]
        tokens[..., t] = np.minimum((u > row).sum(-1), vocab - 1)
    lengths = rng.integers(seq // 4, seq + 1, shape)
    valid = np.arange(seq) < lengths[..., None]
    return np.where(valid, tokens, 0), valid


# ----------------------------------------------------------------------------------------------
# model


class Block(eqx.Module):
    norm1: eqx.nn.LayerNorm
    attention: eqx.nn.MultiheadAttention
    norm2: eqx.nn.LayerNorm
    up: eqx.nn.Linear
    down: eqx.nn.Linear

    def __init__(self, dim: int, heads: int, key: jax.Array):
        k1, k2, k3 = jax.random.split(key, 3)
        self.norm1, self.norm2 = eqx.nn.LayerNorm(dim), eqx.nn.LayerNorm(dim)
        self.attention = eqx.nn.MultiheadAttention(heads, dim, key=k1)
        self.up = eqx.nn.Linear(dim, 4 * dim, key=k2)
        self.down = eqx.nn.Linear(4 * dim, dim, key=k3)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = jax.vmap(self.norm1)(x)
        x = x + self.attention(h, h, h, mask=mask)
        h = jax.vmap(self.norm2)(x)
        return x + jax.vmap(self.down)(jax.nn.gelu(jax.vmap(self.up)(h)))


class Decoder(eqx.Module):
    """Token ids ``[seq]`` -> final hidden states ``[seq, dim]`` (the head is separate)."""

    embed: eqx.nn.Embedding
    position: jax.Array
    blocks: list[Block]
    norm: eqx.nn.LayerNorm

    def __init__(self, vocab: int, seq: int, dim: int, heads: int, layers: int, key: jax.Array):
        keys = jax.random.split(key, layers + 2)
        self.embed = eqx.nn.Embedding(vocab, dim, key=keys[0])
        self.position = 0.02 * jax.random.normal(keys[1], (seq, dim))
        self.blocks = [Block(dim, heads, k) for k in keys[2:]]
        self.norm = eqx.nn.LayerNorm(dim)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = jax.vmap(self.embed)(tokens) + self.position
        causal = jnp.tril(jnp.ones((tokens.shape[0], tokens.shape[0]), bool))
        for block in self.blocks:
            x = block(x, causal)
        return jax.vmap(self.norm)(x)


# ----------------------------------------------------------------------------------------------
# training step: data x model parallel, exact token mean over micro-batches and devices


def make_train_step(static: Any, optimizer: optax.GradientTransformation, mesh: Mesh):
    def local(params, head, tokens, valid):
        """One device: ``tokens [micro, batch / DATA, seq]``; ``head [D, V / MODEL]``."""
        labels = ops.causal_lm_shift(tokens, valid=valid, ignore_index=PAD)
        # The normaliser: every real target token of the step, over micro-batches and devices.
        count = lax.psum(jnp.sum(labels != PAD), "data")

        def micro(grads, batch):
            tok, lab = batch

            def total(params, head):
                hidden = jax.vmap(eqx.combine(params, static))(tok)
                loss, aux = ops.linear_cross_entropy(
                    hidden,
                    head,
                    lab,
                    ignore_index=PAD,
                    z_loss=Z_LOSS,
                    return_aux=True,
                    vocab_axis_name="model",
                )
                return jnp.sum(loss), jnp.sum(aux.correct)

            (loss_sum, correct), g = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(
                params, head
            )
            return jax.tree.map(jnp.add, grads, g), (loss_sum, correct)

        zeros = jax.tree.map(jnp.zeros_like, (params, head))
        grads, (loss_sums, corrects) = lax.scan(micro, zeros, (tokens, labels))
        # Sums over micro-batches and devices first, then one division.
        grads = jax.tree.map(lambda g: g / count, grads)
        loss = lax.psum(jnp.sum(loss_sums), "data") / count
        accuracy = lax.psum(jnp.sum(corrects), "data") / count
        return grads, loss, accuracy

    sharded = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), P(None, "model"), P(None, "data"), P(None, "data")),
        out_specs=((P(), P(None, "model")), P(), P()),
    )

    def train_step(params, head, opt_state, tokens, valid):
        grads, loss, accuracy = sharded(params, head, tokens, valid)
        updates, opt_state = optimizer.update(grads, opt_state, (params, head))
        params, head = optax.apply_updates((params, head), updates)
        return params, head, opt_state, loss, accuracy

    return train_step


def save_curves(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(history["loss"])
    ax1.set(xlabel="step", ylabel="token-mean cross-entropy + z-loss", title="loss")
    ax2.plot(history["accuracy"])
    ax2.set(xlabel="step", ylabel="token accuracy", title="accuracy", ylim=(0, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="where the PNG goes")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    if len(jax.devices()) < DATA * MODEL:
        raise SystemExit(f"needs {DATA * MODEL} devices; set XLA_FLAGS before importing jax")

    # vocab, seq, dim, heads, layers, batch per micro-batch, micro-batches, steps, learning rate
    sizes = (64, 16, 32, 2, 1, 8, 2, 40, 1e-2) if tiny else (512, 64, 128, 4, 2, 16, 2, 300, 3e-3)
    vocab, seq, dim, heads, layers, batch, micro, steps, lr = sizes
    steps = args.steps or steps
    mesh = Mesh(np.array(jax.devices()[: DATA * MODEL]).reshape(DATA, MODEL), ("data", "model"))

    model_key, head_key = jax.random.split(jax.random.key(0))
    params, static = eqx.partition(Decoder(vocab, seq, dim, heads, layers, model_key), eqx.is_array)
    head = jax.random.normal(head_key, (dim, vocab)) / np.sqrt(dim)
    params = jax.device_put(params, NamedSharding(mesh, P()))
    head = jax.device_put(head, NamedSharding(mesh, P(None, "model")))
    optimizer = optax.adamw(lr)
    replicated = NamedSharding(mesh, P())
    opt_state = jax.tree.map(
        lambda x: x if isinstance(x.sharding, NamedSharding) else jax.device_put(x, replicated),
        optimizer.init((params, head)),
    )
    # The state comes back placed as it went in, so that the step compiles once.
    state_shardings = jax.tree.map(lambda x: x.sharding, (params, head, opt_state))
    train_step = jax.jit(
        make_train_step(static, optimizer, mesh), out_shardings=(*state_shardings, None, None)
    )

    probs = make_corpus(vocab)
    rng = np.random.default_rng(1)
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    start = time.perf_counter()
    with tqdm(total=steps, unit="step", desc="training") as bar:
        for _ in range(steps):
            tokens, valid = sample_batch(rng, probs, (micro, batch), seq)
            params, head, opt_state, loss, accuracy = train_step(
                params, head, opt_state, tokens, valid
            )
            history["loss"].append(float(loss))
            history["accuracy"].append(float(accuracy))
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", acc=f"{history['accuracy'][-1]:.3f}")
            bar.update()
    png = args.out / "language_model.png"
    save_curves(history, png)
    print(
        f"trained {steps} steps in {time.perf_counter() - start:.1f} s: loss "
        f"{history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}, token accuracy "
        f"{history['accuracy'][-1]:.3f}; curves saved to {png}"
    )
    return history


if __name__ == "__main__":
    main()
