"""Explicit-pair metric losses: ``y_pred`` is a tuple of embeddings, PyTorch's conventions.

:func:`triplet_margin` takes ``y_pred = (anchor, positive, negative)`` and ignores ``y_true``
(pass ``None``); :func:`cosine_embedding` takes ``y_pred = (x1, x2)`` with ``y_true`` the
``+1/-1`` pair targets; :func:`hinge_embedding` takes pair distances ``y_pred`` and ``+1/-1``
targets of the same shape. The in-batch losses (labels + embeddings) are in
``jaxloss._metric_learning``.

>>> import jax.numpy as jnp, jaxloss
>>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
>>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
>>> print(f"{float(jaxloss.TripletMargin(eps=0.0)(None, (a, a + 0.1, n))):.4f}")
0.1414
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops import metric_learning as ops

_DISTANCE_NAMES = ("L2", "squared-L2", "angular")
ROW_DISTANCE = c.Check(
    lambda x: x is None or isinstance(x, str) or callable(x),
    'None, "L2", "squared-L2", "angular" or a callable f(x1, x2) -> [batch]',
    range_ok=lambda x: x is None or callable(x) or x in _DISTANCE_NAMES,
)


def _rowwise(distance: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """``[batch]`` distances between matching rows of ``x`` and ``y`` (TFA's definitions)."""
    if callable(distance):
        return jnp.asarray(distance(x, y), x.dtype)
    if distance == "angular":
        unit = lambda v: v * lax.rsqrt(jnp.maximum(jnp.sum(v * v, -1, keepdims=True), 1e-12))
        return jnp.maximum(1.0 - jnp.sum(unit(x) * unit(y), -1), 0.0)
    sq = jnp.sum(jnp.square(x - y), -1)
    if distance == "squared-L2":
        return sq
    pos = sq > 0
    # `sq * 0` rather than 0 keeps a NaN distance NaN.
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), sq * 0.0)


def _tuple_of(name: str, y_pred: Any, n: int, what: str) -> tuple[jax.Array, ...]:
    if not isinstance(y_pred, (tuple, list)) or len(y_pred) != n:
        raise TypeError(f"{name}: `y_pred` must be a tuple {what}; got {type(y_pred).__name__}.")
    parts = tuple(c.as_float(p, loss=name, arg="y_pred") for p in y_pred)
    if any(p.shape != parts[0].shape for p in parts) or parts[0].ndim < 1:
        shapes = ", ".join(str(tuple(p.shape)) for p in parts)
        raise ValueError(
            f"{name}: the arrays of `y_pred` must have one shape [..., dim]; got {shapes}."
        )
    return parts


def triplet_margin(
    y_true: ArrayLike | None,
    y_pred: tuple[ArrayLike, ArrayLike, ArrayLike],
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    soft: bool = False,
    distance_metric: str | Callable[..., Any] | None = None,
) -> jax.Array:
    """Triplet margin loss on explicit triplets, PyTorch's ``triplet_margin_loss`` semantics.

    ``y_pred = (anchor, positive, negative)``, each ``[batch, dim]``; ``y_true`` is ignored::

        loss = max(d(a, p) - d(a, n) + margin, 0)        (soft: log(1 + exp(d(a, p) - d(a, n))))

    with ``d(x, y) = ||x - y + eps||_p`` (PyTorch's ``pairwise_distance``), or ``distance_metric``
    (``"L2"``, ``"squared-L2"``, ``"angular"`` or a callable ``f(x1, x2) -> [batch]``, PyTorch's
    ``TripletMarginWithDistanceLoss``). With ``swap`` the negative distance is
    ``min(d(a, n), d(p, n))``.

    Args:
      y_true: ignored (pass ``None``).
      y_pred: the tuple ``(anchor, positive, negative)``.
      margin: the margin (ignored when ``soft``); p: the norm degree (> 0); eps: added to the
        differences (only without ``distance_metric``); swap: the distance swap of Balntas et al.;
      soft: the soft-margin ``softplus`` form; distance_metric: see above.

    Returns:
      ``[batch]`` per-triplet losses.

    Raises:
      TypeError: ``y_pred`` not a 3-tuple, or a bad option kind. ValueError: shapes or values.

    Notes:
      Bad values: NaN in a sample's embeddings makes that sample's loss NaN; the other samples are
      exact. ``y_true`` is not read.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> print(np.asarray(jaxloss.triplet_margin(None, (a, a + 0.1, n), eps=0.0)).round(4))
      [0.1414 0.1414]
    """
    name = "triplet_margin"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    p = c.check_option(name, "p", p, c.POSITIVE)
    eps = c.check_option(name, "eps", eps, c.NON_NEGATIVE)
    swap = c.check_option(name, "swap", swap, c.BOOL)
    soft = c.check_option(name, "soft", soft, c.BOOL)
    distance_metric = c.check_option(name, "distance_metric", distance_metric, ROW_DISTANCE)
    a, pos, neg = _tuple_of(name, y_pred, 3, "(anchor, positive, negative)")
    if distance_metric is None:
        # The kernel's zero-gradient guard at a zero norm would also map a NaN norm to 0; a NaN
        # embedding must give a NaN loss, not a silent margin.
        dist = lambda x, y: jnp.where(
            jnp.isnan(jnp.sum(x - y, -1)), jnp.nan, ops.pairwise_distance(x, y, p, eps)
        )
    else:
        dist = lambda x, y: _rowwise(distance_metric, x, y)
    d_pos, d_neg = dist(a, pos), dist(a, neg)
    if swap:
        d_neg = jnp.minimum(d_neg, dist(pos, neg))
    return jax.nn.softplus(d_pos - d_neg) if soft else jnp.maximum(d_pos - d_neg + margin, 0.0)


class TripletMargin(
    Loss, function=triplet_margin, aliases=("triplet_margin_loss",), inputs="triplets"
):
    """Class handle of :func:`triplet_margin`: ``loss(None, (anchor, positive, negative))``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> print(f"{float(jaxloss.TripletMargin(eps=0.0, swap=True)(None, (a, a + 0.1, n))):.4f}")
      0.1887
    """

    margin: float = option(default=1.0, check=c.FINITE)
    p: float = option(default=2.0, check=c.POSITIVE)
    eps: float = option(default=1e-6, check=c.NON_NEGATIVE)
    swap: bool = option(default=False, check=c.BOOL)
    soft: bool = option(default=False, check=c.BOOL)
    distance_metric: Any = option(default=None, check=ROW_DISTANCE)

    def cast_inputs(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        # y_true is ignored and may be None
        if y_true is None:
            return None, super().cast_inputs(jnp.zeros(()), y_pred)[1]
        return super().cast_inputs(y_true, y_pred)


def cosine_embedding(
    y_true: ArrayLike, y_pred: tuple[ArrayLike, ArrayLike], margin: float = 0.0
) -> jax.Array:
    """Cosine embedding loss, PyTorch's ``cosine_embedding_loss`` semantics.

    ``y_pred = (x1, x2)``, each ``[batch, dim]``; ``y_true`` in ``{1, -1}`` ``[batch]``::

        loss = 1 - cos(x1, x2)              where y_true == 1
               max(cos(x1, x2) - margin, 0)  where y_true == -1
               0                             otherwise

    with ``cos = x1.x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` as in PyTorch.

    Args:
      y_true: targets ``[batch]`` (``1`` similar, ``-1`` dissimilar).
      y_pred: the tuple ``(x1, x2)``.
      margin: the cosine below which dissimilar pairs cost nothing (PyTorch suggests [-1, 1]).

    Returns:
      ``[batch]`` per-pair losses.

    Raises:
      TypeError: ``y_pred`` not a pair. ValueError: shapes that do not line up.

    Notes:
      Bad values: NaN in a sample's embeddings makes that sample's loss NaN; the other samples are
      exact. A target other than +-1 (0, 2, NaN) costs 0, as in torch's formula.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> x1 = jnp.array([[1.0, 0.0], [1.0, 0.0]])
      >>> x2 = jnp.array([[0.6, 0.8], [0.6, 0.8]])
      >>> print(np.asarray(jaxloss.cosine_embedding(jnp.array([1, -1]), (x1, x2))).round(4))
      [0.4 0.6]
    """
    name = "cosine_embedding"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    x1, x2 = _tuple_of(name, y_pred, 2, "(x1, x2)")
    target = c.as_input_array(name, "y_true", y_true)
    if target.shape != x1.shape[:-1]:
        raise ValueError(
            f"{name}: `y_true` must be {tuple(x1.shape[:-1])} (one target per pair); got "
            f"{tuple(target.shape)}."
        )
    return ops.cosine_embedding_loss(x1, x2, target, margin)


class CosineEmbedding(
    Loss, function=cosine_embedding, aliases=("cosine_embedding_loss",), inputs="embedding_pairs"
):
    """Class handle of :func:`cosine_embedding`: ``loss(targets, (x1, x2))``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> x1 = jnp.array([[1.0, 0.0], [1.0, 0.0]])
      >>> x2 = jnp.array([[0.6, 0.8], [0.6, 0.8]])
      >>> print(f"{float(jaxloss.CosineEmbedding(margin=0.5)(jnp.array([1, -1]), (x1, x2))):.4f}")
      0.2500
    """

    margin: float = option(default=0.0, check=c.FINITE)


def hinge_embedding(y_true: ArrayLike, y_pred: ArrayLike, margin: float = 1.0) -> jax.Array:
    """PyTorch's ``hinge_embedding_loss``, averaged over the last axis.

    ``y_pred`` holds distances (e.g. L1 pair distances), ``y_true`` targets in ``{1, -1}``::

        element = [y_true != -1] * y_pred + [y_true != 1] * max(margin - y_pred, 0)
        loss    = mean over the last axis

    Args:
      y_true: targets, same shape as ``y_pred`` (``1`` similar, ``-1`` dissimilar).
      y_pred: distances ``[batch, d0, .., dN]``.
      margin: the distance beyond which dissimilar pairs cost nothing.

    Returns:
      ``[batch, d0, .., dN-1]``: the mean over the last axis, so that the class handle's mean
      is PyTorch's mean over all elements.

    Raises:
      ValueError: shapes that do not broadcast.

    Notes:
      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A target other than +-1 (NaN included) adds both terms, as in torch's formula.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> loss = jaxloss.hinge_embedding(jnp.array([[1, -1]]), jnp.array([[0.3, 0.4]]))
      >>> print(np.asarray(loss).round(4))
      [0.45]
    """
    name = "hinge_embedding"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    return jnp.mean(ops.hinge_embedding_loss(y_pred, y_true, margin), axis=-1)


class HingeEmbedding(
    Loss, function=hinge_embedding, aliases=("hinge_embedding_loss",), inputs="signed_distances"
):
    """Class handle of :func:`hinge_embedding`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> loss = jaxloss.HingeEmbedding()
      >>> print(f"{float(loss(jnp.array([[1, -1]]), jnp.array([[0.3, 0.4]]))):.2f}")
      0.45
    """

    margin: float = option(default=1.0, check=c.FINITE)
