"""Fenchel-Young losses: class distributions ``y_true`` against unnormalised scores ``y_pred``.

Both have shape ``[batch, d0, .., K]`` (one-hot targets are distributions too); the class axis is
the last one unless the loss takes an ``axis``. A Fenchel-Young loss pairs a regulariser ``Omega``
of the simplex with its convex conjugate ``Omega*``::

    L(s, y) = Omega*(s) + Omega(y) - <s, y>      >= 0, and 0 exactly when y = argmax-map(s)

The Shannon negentropy gives the softmax cross-entropy (minus the target's entropy), the Gini
regulariser ``(||p||^2 - 1) / 2`` gives the sparsemax loss, whose prediction ``sparsemax(s)`` puts
exactly zero mass on low-scoring classes. Poly-1 adds ``epsilon * (1 - p_t)`` to the softmax
cross-entropy. Each function returns the unreduced per-sample loss (``y_pred``'s shape without the
class axis).

>>> import jaxloss
>>> print(jaxloss.sparsemax_loss([[0.0, 1.0, 0.0]], [[0.0, 3.0, 0.0]]))  # sparsemax(s) = y_true
[0.]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss import ops
from jaxloss._loss import Loss, option

_REGULARIZERS = ("shannon", "gini")
_REGULARIZER_NAME = c.Check(
    lambda x: isinstance(x, str), 'one of "shannon", "gini"', str, lambda x: x in _REGULARIZERS
)
# The function handle also takes a callable conjugate (optax's `max_fun`); a class keeps names.
_REGULARIZER = c.Check(
    lambda x: isinstance(x, str) or callable(x),
    'one of "shannon", "gini", or a callable conjugate',
    lambda x: x,
    lambda x: callable(x) or x in _REGULARIZERS,
)


def _sparsemax(scores: jax.Array) -> jax.Array:
    """Euclidean projection of ``scores`` onto the simplex, along the last axis."""
    z = -jnp.sort(-scores, axis=-1)
    cumulative = jnp.cumsum(z, axis=-1)
    k = jnp.arange(1, scores.shape[-1] + 1, dtype=scores.dtype)
    support = jnp.sum(1.0 + k * z > cumulative, axis=-1, keepdims=True)
    tau = (jnp.take_along_axis(cumulative, support - 1, axis=-1) - 1.0) / support
    return jnp.maximum(scores - tau, 0.0)


def _gini_loss(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    p = _sparsemax(y_pred)
    # Omega*(s) = <p, s> - ||p||^2 / 2 + 1/2 and Omega(y) = (||y||^2 - 1) / 2: the halves cancel.
    return jnp.sum((p - y_true) * y_pred + 0.5 * (jnp.square(y_true) - jnp.square(p)), axis=-1)


def _require_classes(name: str, y_pred: jax.Array, axis: int | tuple[int, ...] | None = -1) -> None:
    """An empty class axis has no loss to define: refuse it at trace time."""
    axes = range(y_pred.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    if any(y_pred.shape[a] == 0 for a in axes):
        raise ValueError(
            f"{name}: `y_pred` must have at least one class; got shape {tuple(y_pred.shape)}."
        )


def _prepare(name: str, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[jax.Array, jax.Array]:
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    _require_classes(name, y_pred)
    return jnp.broadcast_to(y_true, y_pred.shape), y_pred


def sparsemax_loss(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Sparsemax loss (Martins & Astudillo, 2016): the Fenchel-Young loss of the Gini regulariser.

    With ``p = sparsemax(s)``, the Euclidean projection of the scores onto the simplex::

        loss = <p - y, s> + (||y||^2 - ||p||^2) / 2

    For a one-hot ``y`` this is optax's ``multiclass_sparsemax_loss``. Its gradient is
    ``sparsemax(s) - y``.

    Args:
      y_true: target distributions (one-hot or soft), shape ``[batch, d0, .. dN-1, K]``.
      y_pred: scores, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``; 0 when ``sparsemax(y_pred) == y_true``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.sparsemax_loss([[1.0, 0.0, 0.0]], [[0.5, 1.0, -2.0]]))
      [0.5625]

    Notes:
      Targets off the simplex are not projected; the loss is then not guaranteed to be >= 0.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Targets off the simplex are used as given (the loss can be negative).
    """
    y_true, y_pred = _prepare("sparsemax_loss", y_true, y_pred)
    return _gini_loss(y_true, y_pred)


class SparsemaxLoss(Loss, function=sparsemax_loss, inputs="categorical"):
    """Class handle of :func:`sparsemax_loss`.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.SparsemaxLoss()([[1.0, 0.0, 0.0]], [[0.5, 1.0, -2.0]]))
      0.5625
    """


def fenchel_young_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    regularizer: str | Callable[..., Any] = "shannon",
) -> jax.Array:
    """Fenchel-Young loss ``Omega*(s) + Omega(y) - <s, y>`` (Blondel et al., 2020), last axis.

    ``regularizer`` picks ``Omega``:

    * ``"shannon"`` (negentropy): ``logsumexp(s) + sum(y log y) - <s, y>``, the softmax
      cross-entropy minus the target's entropy (equal to it for one-hot targets);
    * ``"gini"``: the sparsemax loss, see :func:`sparsemax_loss`;
    * a callable ``max_fun(scores_row) -> scalar``: taken as ``Omega*`` itself, applied to each
      row; ``Omega(y)`` is then taken as 0, so the loss is ``max_fun(s) - <s, y>`` (optax's
      ``make_fenchel_young_loss``). Function handle only.

    Args:
      y_true: target distributions, shape ``[batch, d0, .. dN-1, K]``.
      y_pred: scores, same shape.
      regularizer: ``"shannon"``, ``"gini"`` or a callable conjugate.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: a ``regularizer`` that is neither a string nor callable.
      ValueError: an unknown regulariser name, shapes that do not match.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. A negative target gives NaN for that sample; targets need not sum to 1.

    Examples:
      >>> import jax, numpy as np, jaxloss
      >>> y, s = [[0.0, 1.0, 0.0]], [[1.0, 2.0, 0.5]]
      >>> print(np.asarray(jaxloss.fenchel_young_loss(y, s)).round(4))  # softmax CE
      [0.4644]
      >>> print(np.asarray(jaxloss.fenchel_young_loss(y, s, jax.nn.logsumexp)).round(4))
      [0.4644]
    """
    name = "fenchel_young_loss"
    regularizer = c.check_option(name, "regularizer", regularizer, _REGULARIZER)
    y_true, y_pred = _prepare(name, y_true, y_pred)
    if callable(regularizer):
        conjugate = jnp.vectorize(regularizer, signature="(n)->()")
        return conjugate(y_pred) - jnp.sum(y_true * y_pred, axis=-1)
    if regularizer == "gini":
        return _gini_loss(y_true, y_pred)
    negentropy = jnp.sum(jax.scipy.special.xlogy(y_true, y_true), axis=-1)
    return ops.softmax_cross_entropy(y_pred, y_true) + negentropy


class FenchelYoungLoss(Loss, function=fenchel_young_loss, inputs="categorical"):
    """Class handle of :func:`fenchel_young_loss` (named regularisers only).

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.FenchelYoungLoss(regularizer="gini")
      >>> print(loss([[1.0, 0.0, 0.0]], [[0.5, 1.0, -2.0]]))
      0.5625
    """

    regularizer: str = option(default="shannon", check=_REGULARIZER_NAME)


def poly1_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    epsilon: float | jax.Array = 2.0,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Poly-1 cross-entropy (Leng et al., 2022): softmax cross-entropy plus ``epsilon (1 - p_t)``.

    With ``p = softmax(logits)`` over ``axis`` and ``p_t = sum(y_true * p)``::

        loss = -sum(y_true * log p) + epsilon * sum(y_true * (1 - p))

    Args:
      y_true: target distributions (one-hot or soft), shape ``[batch, .., K, ..]``.
      y_pred: logits, same shape.
      epsilon: the weight of the first polynomial term (negative values are allowed, as in the
        paper; ``epsilon = -1`` removes it).
      axis: the class axis.
      where: optional boolean mask broadcastable to ``y_pred`` (a call-time input): classes where
        it is False are left out of the softmax and of both sums; a row with no class left has
        loss 0.

    Returns:
      Per-sample loss, ``y_pred``'s shape without ``axis``.

    Raises:
      TypeError: a non-numeric option.
      ValueError: shapes that do not match, a bad ``axis``, a non-finite ``epsilon``.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Targets are not checked to be one-hot or to sum to 1 (used as given).

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.poly1_crossentropy([[0.0, 1.0]], [[0.0, 0.0]], epsilon=1.0)
      >>> print(np.asarray(loss).round(4))  # log 2 + 0.5
      [1.1931]
    """
    name = "poly1_crossentropy"
    epsilon = c.check_option(name, "epsilon", epsilon, c.FINITE)
    axis = c.check_option(name, "axis", axis, c.AXIS)
    y_true, y_pred = _prepare(name, y_true, y_pred)
    axis = c.normalize_axis(name, "y_pred", axis, y_pred.ndim)
    _require_classes(name, y_pred, axis)
    if where is not None:
        where = jnp.broadcast_to(c.as_input_array(name, "where", where), y_pred.shape)
        # A row with no class left keeps finite logits so that its (zeroed) gradient is not NaN.
        filler = jnp.where(jnp.any(where, axis=axis, keepdims=True), -jnp.inf, 0.0)
        y_pred = jnp.where(where, y_pred, filler)
        y_true = jnp.where(where, y_true, 0.0)
    cross_entropy = ops.softmax_cross_entropy(y_pred, y_true, axis=axis)
    p = jax.nn.softmax(y_pred, axis=axis)
    one_minus_pt = jnp.sum(y_true * (1.0 - p), axis=axis)
    loss = cross_entropy + epsilon * one_minus_pt
    if where is not None:
        loss = jnp.where(jnp.any(where, axis=axis), loss, 0.0)
    return loss


class Poly1Crossentropy(Loss, function=poly1_crossentropy, inputs="categorical"):
    """Class handle of :func:`poly1_crossentropy`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.Poly1Crossentropy(epsilon=1.0)
      >>> print(f"{float(loss([[0.0, 1.0]], [[0.0, 0.0]])):.4f}")
      1.1931
    """

    epsilon: float = option(default=2.0, check=c.FINITE)
    axis: int = option(default=-1, check=c.AXIS)
