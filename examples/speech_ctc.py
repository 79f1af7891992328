"""Speech recognition with CTC: train, decode (greedy and beam search), and force-align.

A synthetic "spoken digits" task stands in for audio: each digit 0-9 has a fixed template, a few
frames of 16 "filterbank" features; an utterance is 2-5 digits, each template stretched by a
random factor, with short silences between and Gaussian noise over everything. The model never sees
where one digit ends and the next begins: that is what CTC is for.

* Training: a three-layer 1-D convolutional acoustic model (plain JAX + optax) emits per-frame
  logits over 11 classes (blank 0, digit ``d`` as class ``d + 1``), trained with the Keras-style
  class handle ``jaxloss.CTC()`` on labels padded with 0 (the blank, as in Keras).
* Decoding: ``jaxloss.ops.ctc_greedy_decode`` and ``ctc_beam_search_decode`` on held-out
  utterances, with the token error rate (edit distance / reference length) printed as it falls.
* Alignment: ``jaxloss.ops.ctc_align`` gives the most likely frame span of every digit of a
  held-out utterance; the plot (features, spans, per-frame posteriors) is saved as a PNG.

Run ``python examples/speech_ctc.py`` (add ``--tiny`` or set ``JAXLOSS_TINY=1`` for a smoke run).
The full run (800 steps) sits on CTC's familiar all-blank plateau for a few hundred steps, then
the token error drops to about 0 (gradient clipping is what gets it off the plateau reliably); the
tiny run only reaches that plateau (the loss falls, the decoders stop emitting noise).
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
from jaxloss import ops

OUTPUT_DIR = Path(__file__).resolve().parent / "output"
FEATURES, DIGITS = 16, 10
CLASSES = DIGITS + 1  # blank 0, digit d -> class d + 1


# ------------------------------------------------------------------------------------------------
# data


def make_templates(seed: int = 0) -> list[np.ndarray]:
    """One ``[frames, FEATURES]`` template per digit, 3-6 frames long."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 1.0, (int(rng.integers(3, 7)), FEATURES)) for _ in range(DIGITS)]


def make_utterances(n: int, templates, max_frames: int, max_digits: int, seed: int):
    """``n`` noisy utterances: features ``[n, max_frames, F]``, frame counts ``[n]``, labels
    ``[n, max_digits]`` (classes 1..10, padded with 0) and digit counts ``[n]``."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, max_frames, FEATURES), np.float32)
    labels = np.zeros((n, max_digits), np.int32)
    frames = np.zeros(n, np.int32)
    counts = np.zeros(n, np.int32)
    for i in range(n):
        digits = rng.integers(0, DIGITS, int(rng.integers(2, max_digits + 1)))
        pieces = [np.zeros((int(rng.integers(1, 3)), FEATURES))]
        for d in digits:
            stretch = rng.uniform(0.8, 1.6)
            tpl = templates[d]
            idx = np.minimum(
                (np.arange(int(len(tpl) * stretch)) / stretch).astype(int), len(tpl) - 1
            )
            pieces += [tpl[idx], np.zeros((int(rng.integers(0, 3)), FEATURES))]
        utt = np.concatenate(pieces)
        x[i, : len(utt)] = utt + rng.normal(0.0, 0.3, utt.shape)
        frames[i], counts[i] = len(utt), len(digits)
        labels[i, : len(digits)] = digits + 1
    return x, frames, labels, counts


# ------------------------------------------------------------------------------------------------
# model: three 1-D convolutions over time, then a per-frame linear layer


def init_params(hidden: int, seed: int = 0) -> list[dict[str, jax.Array]]:
    rng = np.random.default_rng(seed)
    shapes = [(5, FEATURES, hidden), (5, hidden, hidden), (3, hidden, hidden), (1, hidden, CLASSES)]
    params = []
    for width, fan_in, fan_out in shapes:
        w = rng.normal(0.0, np.sqrt(2.0 / (width * fan_in)), (width, fan_in, fan_out))
        params.append({"w": jnp.asarray(w, jnp.float32), "b": jnp.zeros(fan_out, jnp.float32)})
    return params


def apply(params, x: jax.Array) -> jax.Array:
    """Features ``[batch, time, F]`` -> logits ``[batch, time, CLASSES]``."""
    h = x
    for i, layer in enumerate(params):
        h = jax.lax.conv_general_dilated(
            h, layer["w"], (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
        )
        h = h + layer["b"]
        if i < len(params) - 1:
            h = jax.nn.gelu(h)
    return h


def make_step(optimizer: optax.GradientTransformation):
    loss_object = jaxloss.CTC()  # y_true padded with 0 = the blank, Keras' convention

    @jax.jit
    def step(params, opt_state, x, labels):
        def objective(p):
            return loss_object(labels, apply(p, x))

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


# ------------------------------------------------------------------------------------------------
# evaluation


def edit_distance(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def token_error_rate(decoded: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> float:
    errors = sum(
        edit_distance([t for t in hyp if t >= 0], ref[:n])
        for hyp, ref, n in zip(decoded, labels, counts, strict=True)
    )
    return errors / int(counts.sum())


def save_alignment(path: Path, x, logits, alignment, labels, count: int, frames: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = np.asarray(jax.nn.softmax(logits, axis=-1))[:frames]
    fig, (ax_x, ax_p) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    ax_x.imshow(np.asarray(x)[:frames].T, aspect="auto", origin="lower", cmap="magma")
    ax_x.set(ylabel="feature", title="forced alignment (ctc_align) of a held-out utterance")
    ax_p.plot(probs[:, 0], color="0.6", lw=1, label="blank")
    for j in range(count):
        start, end = int(alignment.starts[j]), int(alignment.ends[j])
        digit = int(labels[j]) - 1
        color = plt.cm.tab10(digit)
        for ax in (ax_x, ax_p):
            ax.axvspan(start - 0.5, end + 0.5, color=color, alpha=0.25)
        ax_x.text((start + end) / 2, FEATURES - 1.5, str(digit), ha="center", color="w", size=12)
        ax_p.plot(probs[:, digit + 1], color=color, lw=1.5)
    ax_p.set(xlabel="frame", ylabel="posterior", ylim=(0, 1.02))
    ax_p.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few-second smoke run")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="where the PNG goes")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("JAXLOSS_TINY") == "1"
    n_train, steps, hidden, batch, beam = (256, 60, 32, 32, 4) if tiny else (4000, 800, 64, 64, 8)
    steps = args.steps or steps
    max_digits, max_frames = 5, 60  # the longest utterance is 2 + 5 * (9 + 2) = 57 frames

    templates = make_templates()
    x, _, labels, _ = make_utterances(n_train, templates, max_frames, max_digits, 1)
    vx, vframes, vlabels, vcounts = make_utterances(128, templates, max_frames, max_digits, 2)
    params = init_params(hidden)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    opt_state = optimizer.init(params)
    step = make_step(optimizer)
    predict = jax.jit(apply)

    def greedy_error(p) -> float:
        decoded, _ = ops.ctc_greedy_decode(predict(p, vx), vframes)
        return token_error_rate(np.asarray(decoded), vlabels, vcounts)

    rng = np.random.default_rng(3)
    history = {"loss": [], "greedy_error": [greedy_error(params)]}
    print(f"step {0:5d}  greedy token error {history['greedy_error'][0]:.3f}")
    for i in range(1, steps + 1):
        idx = rng.integers(0, n_train, batch)
        params, opt_state, loss = step(params, opt_state, x[idx], labels[idx])
        history["loss"].append(float(loss))
        if i % max(1, steps // 6) == 0:
            history["greedy_error"].append(greedy_error(params))
            print(
                f"step {i:5d}  CTC loss {float(loss):7.3f}  "
                f"greedy token error {history['greedy_error'][-1]:.3f}"
            )

    logits = predict(params, vx)
    decoded, _ = ops.ctc_beam_search_decode(logits, vframes, beam_width=beam)
    beam_error = token_error_rate(np.asarray(decoded[:, 0]), vlabels, vcounts)
    greedy = history["greedy_error"][-1]
    print(f"final: greedy token error {greedy:.3f}, beam search ({beam}) {beam_error:.3f}")

    alignment = ops.ctc_align(logits, vlabels, logit_lengths=vframes, label_lengths=vcounts)
    i = 0
    png = args.out / "speech_ctc_alignment.png"
    save_alignment(
        png,
        vx[i],
        logits[i],
        jax.tree_util.tree_map(lambda a: a[i], alignment),
        vlabels[i],
        int(vcounts[i]),
        int(vframes[i]),
    )
    digits = [int(d) - 1 for d in vlabels[i, : vcounts[i]]]
    print(f"alignment of held-out utterance {i} (digits {digits}) -> {png}")
    return {
        "first_loss": history["loss"][0],
        "loss": float(np.mean(history["loss"][-5:])),
        "greedy_error": history["greedy_error"],
        "beam_error": beam_error,
        "alignment_scores": np.asarray(alignment.scores),
        "png": png,
    }


if __name__ == "__main__":
    main()
