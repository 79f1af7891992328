"""Plots of each registered loss, computed at build time from the real function.

Each plot has two panels: the loss of one sample, and its derivative with respect to the plotted
prediction coordinate ``x`` (by ``jax.grad`` through the library's own gradient, custom VJPs
included), for a few targets or option values. A loss gets a curated recipe when one is written
below (by function name); otherwise the recipe of its registry ``inputs`` kind; a kind with no
recipe falls back to the contract test's input generator (``tests/_inputs.py``), plotting the loss
along the segment between two of its random predictions. A loss no recipe can plot fails the build.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

POINTS = 61


@dataclasses.dataclass
class Curve:
    label: str
    f: Callable[[jax.Array], jax.Array]  # scalar x -> scalar loss


@dataclasses.dataclass
class Recipe:
    x: np.ndarray
    xlabel: str
    curves: list[Curve]
    caption: str


def _params(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _first(values: jax.Array) -> jax.Array:
    return jnp.ravel(values)[0]


# ---------------------------------------------------------------------------------------------
# Recipes by inputs kind


def _regression(fn: Callable[..., Any], **opts: Any) -> Recipe:
    xs = np.linspace(-1.0, 3.0, POINTS)
    curves = [
        Curve(f"y_true = {t:g}", lambda x, t=t: _first(fn(jnp.full((1, 1), t), x.reshape(1, 1))))
        for t in (0.5, 1.0, 2.0)
    ]
    return Recipe(xs, "y_pred", curves, "one element; `y_true` in {0.5, 1, 2}")


def _binary(fn: Callable[..., Any]) -> Recipe:
    if "from_logits" in _params(fn):
        xs = np.linspace(-6.0, 6.0, POINTS)
        opts: dict[str, Any] = {"from_logits": True}
        xlabel, how = "logit", "`from_logits=True`"
    else:
        xs = np.linspace(0.02, 0.98, POINTS)
        opts, xlabel, how = {}, "y_pred (probability)", "probabilities"
    curves = [
        Curve(
            f"y_true = {t:g}",
            lambda x, t=t: _first(fn(jnp.full((1, 1), t), x.reshape(1, 1), **opts)),
        )
        for t in (0.0, 0.3, 1.0)
    ]
    return Recipe(xs, xlabel, curves, f"one element, {how}; `y_true` in {{0, 0.3, 1}}")


def _class_prediction(fn: Callable[..., Any]) -> tuple[np.ndarray, str, dict[str, Any], Any]:
    """Three classes; ``x`` drives class 0: its logit ``(x, 0, 0)`` or probability
    ``(x, (1 - x) / 2, (1 - x) / 2)``."""
    if "from_logits" in _params(fn):
        xs = np.linspace(-6.0, 6.0, POINTS)

        def pred(x: jax.Array) -> jax.Array:
            return jnp.stack([x, jnp.zeros_like(x), jnp.zeros_like(x)])[None]

        return xs, "logit of class 0, logits (x, 0, 0)", {"from_logits": True}, pred
    xs = np.linspace(0.02, 0.98, POINTS)

    def prob(x: jax.Array) -> jax.Array:
        return jnp.stack([x, (1 - x) / 2, (1 - x) / 2])[None]

    return xs, "probability of class 0, (x, (1-x)/2, (1-x)/2)", {}, prob


def _categorical(fn: Callable[..., Any], **extra: Any) -> Recipe:
    xs, xlabel, opts, pred = _class_prediction(fn)
    targets = {
        "y_true = (1, 0, 0)": (1.0, 0.0, 0.0),
        "y_true = (0.6, 0.2, 0.2)": (0.6, 0.2, 0.2),
        "y_true = (0, 1, 0)": (0.0, 1.0, 0.0),
    }
    curves = [
        Curve(label, lambda x, t=t: _first(fn(jnp.array([t]), pred(x), **opts, **extra)))
        for label, t in targets.items()
    ]
    return Recipe(xs, xlabel, curves, "three classes; one-hot, soft and wrong-class targets")


def _sparse_categorical(fn: Callable[..., Any], **extra: Any) -> Recipe:
    xs, xlabel, opts, pred = _class_prediction(fn)
    curves = [
        Curve(f"label = {k}", lambda x, k=k: _first(fn(jnp.array([k]), pred(x), **opts, **extra)))
        for k in (0, 1)
    ]
    return Recipe(xs, xlabel, curves, "three classes; the label is class 0, then class 1")


def _segmentation(fn: Callable[..., Any], **extra: Any) -> Recipe:
    xs = np.linspace(0.0, 1.0, POINTS)
    y_true = jnp.array([[[1.0], [0.0]]])

    def make(q: float) -> Callable[[jax.Array], jax.Array]:
        return lambda x: _first(
            fn(y_true, jnp.stack([x, jnp.asarray(q)]).reshape(1, 2, 1), **extra)
        )

    curves = [Curve(f"background pixel at {q:g}", make(q)) for q in (0.0, 0.3, 0.6)]
    return Recipe(xs, "prediction on the foreground pixel", curves, "a two-pixel mask (1, 0)")


def _angle_embeddings(theta: jax.Array) -> jax.Array:
    """Four unit embeddings in 2-D, labels (0, 0, 1, 1): the anchor at angle ``theta``, its
    positive at 0, the negatives at 90 and 180 degrees."""
    anchor = jnp.stack([jnp.cos(theta), jnp.sin(theta)])
    rest = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    return jnp.concatenate([anchor[None], rest])


def _metric_learning(fn: Callable[..., Any], **extra: Any) -> Recipe:
    xs = np.linspace(-math.pi, math.pi, POINTS)
    labels = jnp.array([0, 0, 1, 1])
    curves = [Curve("anchor's loss", lambda x: _first(fn(labels, _angle_embeddings(x), **extra)))]
    return Recipe(
        xs,
        "anchor angle (rad); positive at 0, negatives at pi/2 and pi",
        curves,
        "four unit embeddings, labels (0, 0, 1, 1)",
    )


def _ctc(fn: Callable[..., Any], **extra: Any) -> Recipe:
    xs = np.linspace(-2.0, 6.0, POINTS)
    frames, classes = 6, 4

    def make(labels: tuple[int, ...]) -> Callable[[jax.Array], jax.Array]:
        # an alignment that spends frames/len(labels) frames on each label (no repeats, no blank)
        path = np.repeat(labels, frames // len(labels))[:frames]
        path = np.concatenate([path, np.full(frames - len(path), labels[-1])]).astype(int)
        onehot = jnp.asarray(np.eye(classes)[path][None], jnp.float32)
        padded = jnp.array([list(labels) + [0] * (3 - len(labels))])
        return lambda x: _first(fn(padded, x * onehot, **extra))

    curves = [Curve(f"target {list(t)}", make(t)) for t in ((1,), (1, 2), (1, 2, 3))]
    return Recipe(
        xs,
        "x: logits = x * one-hot(an alignment of the target)",
        curves,
        f"{frames} frames, {classes} classes (0 is the blank)",
    )


def _linear_head(fn: Callable[..., Any], **extra: Any) -> Recipe:
    xs = np.linspace(-4.0, 4.0, POINTS)
    weight = jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

    def make(label: int) -> Callable[[jax.Array], jax.Array]:
        return lambda x: _first(
            fn(jnp.array([label]), (jnp.stack([x, jnp.zeros_like(x)])[None], weight), **extra)
        )

    curves = [Curve(f"label = {k}", make(k)) for k in (0, 1, 2)]
    return Recipe(
        xs, "x: hidden = (x, 0), logits = (x, 0, -x)", curves, "a 2-D hidden state, 3 tokens"
    )


KINDS: dict[str, Callable[..., Recipe]] = {
    "regression": _regression,
    "binary": _binary,
    "categorical": _categorical,
    "sparse_categorical": _sparse_categorical,
    "segmentation": _segmentation,
    "metric_learning": _metric_learning,
    "ctc": _ctc,
    "linear_head": _linear_head,
}


# ---------------------------------------------------------------------------------------------
# Curated recipes: option values that show what the option does


def _option_sweep(
    base: Callable[[Callable[..., Any], dict[str, Any]], Callable[[jax.Array], jax.Array]],
    fn: Callable[..., Any],
    option: str,
    values: tuple[Any, ...],
    xs: np.ndarray,
    xlabel: str,
    caption: str,
) -> Recipe:
    curves = [Curve(f"{option} = {v:g}", base(fn, {option: v})) for v in values]
    return Recipe(xs, xlabel, curves, caption)


def _huber(fn: Callable[..., Any]) -> Recipe:
    return _option_sweep(
        lambda fn, o: lambda x: _first(fn(jnp.zeros((1, 1)), x.reshape(1, 1), **o)),
        fn,
        "delta",
        (0.5, 1.0, 2.0),
        np.linspace(-3.0, 3.0, POINTS),
        "y_pred - y_true",
        "one element; quadratic within `delta`, linear beyond",
    )


def _binary_focal(fn: Callable[..., Any]) -> Recipe:
    return _option_sweep(
        lambda fn, o: (
            lambda x: _first(fn(jnp.ones((1, 1)), x.reshape(1, 1), from_logits=True, **o))
        ),
        fn,
        "gamma",
        (0.0, 2.0, 5.0),
        np.linspace(-6.0, 6.0, POINTS),
        "logit (y_true = 1)",
        "one element, `from_logits=True`; `gamma = 0` is the binary cross-entropy",
    )


def _categorical_focal(fn: Callable[..., Any]) -> Recipe:
    xs, xlabel, opts, pred = _class_prediction(fn)
    return _option_sweep(
        lambda fn, o: lambda x: _first(fn(jnp.array([[1.0, 0.0, 0.0]]), pred(x), **opts, **o)),
        fn,
        "gamma",
        (0.0, 2.0, 5.0),
        xs,
        xlabel,
        "three classes, target class 0; `gamma = 0` is the cross-entropy (times `alpha`)",
    )


def _generalized_ce(fn: Callable[..., Any]) -> Recipe:
    xs, xlabel, opts, pred = _class_prediction(fn)
    return _option_sweep(
        lambda fn, o: lambda x: _first(fn(jnp.array([0]), pred(x), **opts, **o)),
        fn,
        "q",
        (0.1, 0.5, 0.9),
        xs,
        xlabel,
        "three classes, label 0; small `q` approaches the cross-entropy, large `q` the MAE",
    )


def _tversky(fn: Callable[..., Any]) -> Recipe:
    xs = np.linspace(0.0, 1.0, POINTS)
    y_true = jnp.array([[[1.0], [0.0]]])

    def make(alpha: float, beta: float) -> Callable[[jax.Array], jax.Array]:
        return lambda x: _first(
            fn(y_true, jnp.stack([x, jnp.asarray(0.3)]).reshape(1, 2, 1), alpha=alpha, beta=beta)
        )

    pairs = ((0.3, 0.7), (0.5, 0.5), (0.7, 0.3))
    curves = [Curve(f"alpha = {a:g}, beta = {b:g}", make(a, b)) for a, b in pairs]
    return Recipe(
        xs, "prediction on the foreground pixel", curves, "mask (1, 0), background pixel at 0.3"
    )


def _circle(fn: Callable[..., Any]) -> Recipe:
    labels = jnp.array([0, 0, 1, 1])
    return _option_sweep(
        lambda fn, o: lambda x: _first(fn(labels, _angle_embeddings(x), **o)),
        fn,
        "gamma",
        (8.0, 32.0, 80.0),
        np.linspace(-math.pi, math.pi, POINTS),
        "anchor angle (rad); positive at 0, negatives at pi/2 and pi",
        "four unit embeddings, labels (0, 0, 1, 1)",
    )


def _hinge(fn: Callable[..., Any]) -> Recipe:
    xs = np.linspace(-2.5, 2.5, POINTS)
    curves = [
        Curve(f"y_true = {t:g}", lambda x, t=t: _first(fn(jnp.full((1, 1), t), x.reshape(1, 1))))
        for t in (-1.0, 1.0)
    ]
    return Recipe(xs, "y_pred (margin)", curves, "one element; labels in {-1, 1} (0 means -1)")


def _poisson(fn: Callable[..., Any]) -> Recipe:
    xs = np.linspace(0.05, 4.0, POINTS)
    curves = [
        Curve(f"y_true = {t:g}", lambda x, t=t: _first(fn(jnp.full((1, 1), t), x.reshape(1, 1))))
        for t in (0.0, 1.0, 2.0)
    ]
    return Recipe(xs, "y_pred (rate)", curves, "one element; counts 0, 1, 2")


def _cosine(fn: Callable[..., Any]) -> Recipe:
    xs = np.linspace(-math.pi, math.pi, POINTS)

    def make(phi: float) -> Callable[[jax.Array], jax.Array]:
        target = jnp.array([[math.cos(phi), math.sin(phi)]])
        return lambda x: _first(fn(target, jnp.stack([jnp.cos(x), jnp.sin(x)])[None]))

    curves = [Curve(f"y_true at {d} deg", make(math.radians(d))) for d in (0, 90, 180)]
    return Recipe(xs, "angle of y_pred (rad)", curves, "2-D unit vectors")


def _linear_ce(fn: Callable[..., Any]) -> Recipe:
    recipe = _linear_head(fn)
    weight = jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    recipe.curves = [
        Curve(
            f"label_smoothing = {ls:g}",
            lambda x, ls=ls: _first(
                fn(
                    jnp.array([0]),
                    (jnp.stack([x, jnp.zeros_like(x)])[None], weight),
                    label_smoothing=ls,
                )
            ),
        )
        for ls in (0.0, 0.1, 0.3)
    ]
    recipe.caption = "a 2-D hidden state, 3 tokens, label 0"
    return recipe


CURATED: dict[str, Callable[[Callable[..., Any]], Recipe]] = {
    "huber": _huber,
    "binary_focal_crossentropy": _binary_focal,
    "categorical_focal_crossentropy": _categorical_focal,
    "categorical_generalized_cross_entropy": _generalized_ce,
    "tversky": _tversky,
    "circle": _circle,
    "hinge": _hinge,
    "squared_hinge": _hinge,
    "poisson": _poisson,
    "cosine_similarity": _cosine,
    "linear_crossentropy": _linear_ce,
}


# ---------------------------------------------------------------------------------------------
# Fallback for a kind without a recipe: the contract test's generator


def _generated(fn: Callable[..., Any], kind: str) -> Recipe:
    try:
        from tests._inputs import GENERATORS
    except ImportError as err:
        raise LookupError(f"no plot recipe for inputs kind {kind!r} ({err})") from err
    if kind not in GENERATORS:
        raise LookupError(f"no plot recipe and no test input generator for inputs kind {kind!r}")
    gen = GENERATORS[kind]
    xs = np.linspace(0.0, 1.0, POINTS)
    _, start = gen(jax.random.PRNGKey(0))
    _, stop = gen(jax.random.PRNGKey(1))

    def make(seed: int) -> Callable[[jax.Array], jax.Array]:
        y_true, _ = gen(jax.random.PRNGKey(seed))
        return lambda x: _first(
            fn(y_true, jax.tree.map(lambda a, b: (1 - x) * a + x * b, start, stop))
        )

    curves = [Curve(f"targets #{s}", make(s)) for s in (2, 3, 4)]
    return Recipe(
        xs,
        "t: prediction (1 - t) * p0 + t * p1 between two random predictions",
        curves,
        f"inputs from the contract test's `{kind}` generator; the first sample's loss",
    )


def recipe_for(fn: Callable[..., Any], kind: str) -> Recipe:
    name = getattr(fn, "__name__", "")
    if name in CURATED:
        return CURATED[name](fn)
    if kind in KINDS:
        return KINDS[kind](fn)
    return _generated(fn, kind)


def render(fn: Callable[..., Any], kind: str, title: str) -> tuple[bytes, str]:
    """The PNG of one loss's plot and its caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipe = recipe_for(fn, kind)
    xs = jnp.asarray(recipe.x, jnp.float32)
    fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(7.6, 2.7), dpi=90)
    # One compiled program per loss: eager vmap dispatches op by op and is several times slower.
    sweep = jax.jit(lambda xs: [jax.vmap(jax.value_and_grad(c.f))(xs) for c in recipe.curves])
    for curve, (values, grads) in zip(recipe.curves, sweep(xs), strict=True):
        values, grads = np.asarray(values, np.float64), np.asarray(grads, np.float64)
        if not np.isfinite(values).any():
            raise ValueError(f"{title}: the curve {curve.label!r} has no finite value")
        ax_l.plot(recipe.x, values, label=curve.label, lw=1.6)
        ax_g.plot(recipe.x, grads, lw=1.6)
    ax_l.set_title("loss", fontsize=9)
    ax_g.set_title("d loss / d x", fontsize=9)
    for ax in (ax_l, ax_g):
        ax.set_xlabel(recipe.xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    ax_g.axhline(0.0, color="0.6", lw=0.8)
    ax_l.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    # Fixed margins: tight_layout costs as much as the rest of the figure.
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.2, top=0.82, wspace=0.18)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue(), recipe.caption


# ---------------------------------------------------------------------------------------------
# Rendering in worker processes


# The curves are tiny: compiling them is nearly all the cost, so compile fast rather than well.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def init_worker(paths: list[str]) -> None:
    """Set up a spawned worker: import paths and the environment, before jax is imported."""
    import os
    import sys

    sys.path[:0] = [p for p in paths if p not in sys.path]
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ["MPLBACKEND"] = "Agg"


def render_by_name(module: str, name: str, kind: str) -> tuple[bytes, str]:
    """:func:`render` for the function ``module.name`` (importing it registers its family)."""
    import importlib

    fn = getattr(importlib.import_module(module), name)
    return render(fn, kind, name)
