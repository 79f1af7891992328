"""DPO: align a tiny language model with synthetic preference pairs, watching reward accuracy rise.

The policy is a one-layer bigram model (an embedding and an output head ``weight [D, V]``). Each
preference pair shares a prompt token; the *chosen* completion counts upward (``x[i+1] = x[i] + 1``
mod V), the *rejected* one has one token replaced, and 30% of the training pairs are flipped. The
reference model is the policy at initialisation, frozen.
Per-sequence log-probabilities come from :func:`jaxloss.sequence_log_probs` on the head's
``(hidden, weight)`` pair, so the ``[tokens, vocab]`` logits are never built, and
:class:`jaxloss.DPO` turns them into the loss; ``DPO.metrics`` gives the rewards trainers log.

Run ``python examples/preference.py`` (add ``--tiny`` or set ``JAXLOSS_TINY=1`` for a smoke run);
the curves go to ``examples/output/preference.png``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

OUTPUT_DIR = Path(__file__).resolve().parent / "output"


def make_pairs(n: int, vocab: int, length: int, seed: int, noise: float = 0.0):
    """Token sequences ``[n, 2, length + 1]``: (chosen, rejected) sharing their first token.

    The rejected completion is the chosen one with one token replaced at random; a fraction
    ``noise`` of the pairs have their preference flipped (annotators disagree).
    """
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, vocab, n)
    chosen = (prompt[:, None] + np.arange(length + 1)) % vocab
    rejected = chosen.copy()
    where = rng.integers(1, length + 1, n)
    rows = np.arange(n)
    rejected[rows, where] = (chosen[rows, where] + rng.integers(1, vocab, n)) % vocab
    pairs = np.stack([chosen, rejected], axis=1)
    flip = rng.random(n) < noise
    pairs[flip] = pairs[flip][:, ::-1]
    return pairs.astype(np.int32)


def init_params(key: jax.Array, vocab: int, dim: int) -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(key)
    return {
        "embed": jax.random.normal(k1, (vocab, dim)) * 0.5,
        "head": jax.random.normal(k2, (dim, vocab)) * 0.5,
    }


def sequence_logps(params: dict[str, jax.Array], tokens: jax.Array) -> jax.Array:
    """``[n, 2]`` log-probabilities of each completion (every token after the prompt)."""
    hidden = jnp.tanh(params["embed"][tokens[..., :-1]])  # [n, 2, length, dim]
    return jaxloss.sequence_log_probs((hidden, params["head"]), tokens[..., 1:])


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="where the PNG goes")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n, vocab, dim, length, epochs, batch = (
        (256, 12, 8, 4, 6, 64) if tiny else (4096, 64, 32, 8, 20, 256)
    )
    train = make_pairs(n, vocab, length, seed=0, noise=0.3)
    held_out = make_pairs(256, vocab, length, seed=1)
    params = init_params(jax.random.key(0), vocab, dim)
    reference = jax.lax.stop_gradient(params)
    loss_fn = jaxloss.DPO(beta=0.1)
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, tokens):
        ref_logps = sequence_logps(reference, tokens)

        def objective(p):
            return loss_fn(ref_logps, sequence_logps(p, tokens))

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params, tokens):
        ref_logps, logps = sequence_logps(reference, tokens), sequence_logps(params, tokens)
        metrics = loss_fn.metrics(ref_logps, logps)
        return loss_fn(ref_logps, logps), jnp.mean(metrics["reward_accuracies"])

    history: dict[str, list[float]] = {"loss": [], "reward_accuracy": []}
    loss, accuracy = evaluate(params, held_out)
    for epoch in range(epochs + 1):
        history["loss"].append(float(loss))
        accuracy = float(accuracy)
        history["reward_accuracy"].append(accuracy)
        print(f"epoch {epoch:2d}  dpo loss {float(loss):.4f}  reward accuracy {accuracy:.3f}")
        if epoch == epochs:
            break
        order = np.random.default_rng(epoch).permutation(n)
        for start in range(0, n, batch):
            params, opt_state, _ = step(params, opt_state, train[order[start : start + batch]])
        loss, accuracy = evaluate(params, held_out)
    history["png"] = [str(plot(history, args.out))]  # type: ignore[list-item]
    return history


def plot(history: dict[str, list[float]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax1.plot(history["loss"], marker="o")
    ax1.set(title="DPO loss (held-out pairs)", xlabel="epoch")
    ax2.plot(history["reward_accuracy"], marker="o", color="tab:green")
    ax2.set(title="reward accuracy", xlabel="epoch", ylim=(-0.02, 1.02))
    fig.tight_layout()
    path = out / "preference.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
