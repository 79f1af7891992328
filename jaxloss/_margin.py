"""Margin losses: raw scores ``y_pred`` against the side or the class they should favour.

Three target conventions, one per loss shape:

* signed targets (``perceptron``, ``soft_margin``): ``y_true`` in ``{-1, 1}`` with the shape of
  ``y_pred``; an array whose every entry is 0 or 1 is mapped by ``2 y - 1`` (Keras' hinge rule);
* class indices (``multiclass_hinge``, ``multi_margin``): integer ``y_true`` of shape
  ``[batch, ..]`` against scores ``[batch, .., K]``;
* label sets (``multilabel_soft_margin``: multi-hot ``{0, 1}`` of the shape of ``y_pred``;
  ``multilabel_margin``: integer class indices ``[batch, .., K]`` listing the positive classes,
  ended by the first ``-1``).

Each function returns the unreduced per-sample loss (the scores' shape without the last axis).

>>> import jaxloss
>>> print(jaxloss.multiclass_hinge([0, 2], [[2.0, 1.5, 0.0], [0.0, 0.5, 1.0]]))
[0.5 0.5]
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss import ops
from jaxloss._loss import Loss, option

# Function handles also take a (traced) weight array; class handles keep hashable tuples.
_WEIGHTS = dataclasses.replace(c.PER_CLASS_WEIGHTS, array_ok=True)
_MARGIN = c.FINITE
# The two powers torch's multi_margin_loss has.
_POWER = c.Check(c.is_int, "1 or 2", int, lambda p: p in (1, 2))


def _signed(y_true: jax.Array) -> jax.Array:
    # Keras' hinge convention: a {0, 1} array is read as {-1, 1}; anything else is used as given.
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def _require_classes(name: str, y_pred: jax.Array, axis: int | tuple[int, ...] | None = -1) -> None:
    """An empty class axis has no loss to define: refuse it at trace time."""
    axes = range(y_pred.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    if any(y_pred.shape[a] == 0 for a in axes):
        raise ValueError(
            f"{name}: `y_pred` must have at least one class; got shape {tuple(y_pred.shape)}."
        )


def _class_weights(name: str, class_weight, num_classes: int, dtype) -> jax.Array | None:
    class_weight = c.check_option(name, "class_weight", class_weight, _WEIGHTS)
    if class_weight is None:
        return None
    c.check_num_classes(name, "class_weight", class_weight, num_classes)
    return jnp.asarray(class_weight, dtype)


def _scores_and_labels(name: str, y_true: ArrayLike, y_pred: ArrayLike):
    """Scores ``[batch, .., K]`` and integer labels ``[batch, ..]`` (a trailing 1 is squeezed)."""
    y_pred = c.as_float(y_pred, loss=name, arg="y_pred")
    y_true = c.as_input_array(name, "y_true", y_true)
    c.check_rank(name, "y_pred", y_pred, 2)
    c.check_integer(name, "y_true", y_true)
    _require_classes(name, y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"{name}: `y_true` must have the shape of `y_pred` without its class axis "
            f"{tuple(y_pred.shape[:-1])}; got {tuple(y_true.shape)}."
        )
    return y_true.astype(jnp.int32), y_pred


def _label_score(y_true: jax.Array, y_pred: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The label's score ``[..., 1]`` (NaN for a label outside ``[0, K)``) and the label mask."""
    k = y_pred.shape[-1]
    is_label = jnp.arange(k) == y_true[..., None]
    valid = (y_true >= 0) & (y_true < k)
    picked = jnp.sum(jnp.where(is_label, y_pred, 0.0), axis=-1, keepdims=True)
    return jnp.where(valid[..., None], picked, jnp.nan), is_label


def perceptron(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Perceptron loss, ``mean(max(-y_true * y_pred, 0), axis=-1)``: a hinge with no margin.

    Args:
      y_true: signed targets in ``{-1, 1}`` (a ``{0, 1}`` array is converted), shape
        ``[batch, d0, .. dN]``.
      y_pred: raw scores, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.perceptron([[1.0, -1.0], [1.0, 1.0]], [[0.5, 2.0], [-1.0, 3.0]]))
      [1.  0.5]

    Notes:
      The gradient is ``-y_true / d`` where the sign is wrong and 0 where it is right (at a score
      of exactly 0 it is 0).

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. Labels in {0, 1} become -1/+1 only when every label of the call is 0 or 1 (Keras'
      rule): one label outside {0, 1} (NaN included) leaves all labels as given, so it changes the
      other samples' losses too.
    """
    y_true, y_pred = c.match_shapes("perceptron", y_true, y_pred)
    return jnp.mean(jnp.maximum(-_signed(y_true) * y_pred, 0.0), axis=-1)


class Perceptron(Loss, function=perceptron, inputs="binary"):
    """Class handle of :func:`perceptron`.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.Perceptron()([[1.0, -1.0], [1.0, 1.0]], [[0.5, 2.0], [-1.0, 3.0]]))
      0.75
    """


def soft_margin(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Soft-margin (logistic) loss, ``mean(log(1 + exp(-y_true * y_pred)), axis=-1)``.

    ``torch.nn.SoftMarginLoss`` per sample; computed as ``softplus(-y * s)``, so scores of
    ``+-1e4`` give exact, finite values and gradients.

    Args:
      y_true: signed targets in ``{-1, 1}`` (a ``{0, 1}`` array is converted), shape
        ``[batch, d0, .. dN]``.
      y_pred: raw scores, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Notes:
      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. Labels in {0, 1} become -1/+1 only when every label of the call is 0 or 1 (Keras'
      rule): one label outside {0, 1} (NaN included) leaves all labels as given, so it changes the
      other samples' losses too.

    Examples:
      >>> import numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.soft_margin([[1.0, -1.0]], [[0.0, 2.0]])).round(4))
      [1.41]
    """
    y_true, y_pred = c.match_shapes("soft_margin", y_true, y_pred)
    return jnp.mean(jax.nn.softplus(-_signed(y_true) * y_pred), axis=-1)


class SoftMargin(Loss, function=soft_margin, inputs="binary"):
    """Class handle of :func:`soft_margin`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.SoftMargin()([[1.0, -1.0]], [[0.0, 2.0]])):.4f}")
      1.4100
    """


def multiclass_hinge(y_true: ArrayLike, y_pred: ArrayLike, margin: float = 1.0) -> jax.Array:
    """Crammer-Singer multiclass hinge: the worst margin violation of any wrong class.

    ``loss = max(0, max_{i != y} (margin + s_i - s_y))`` for scores ``s`` and label ``y``. With
    ``margin=0`` it is the multiclass perceptron loss ``max_i s_i - s_y``.

    Args:
      y_true: integer class indices, shape ``[batch, d0, .. dN-1]``.
      y_pred: scores, shape ``[batch, d0, .. dN-1, K]``.
      margin: the required gap between the label's score and every other score.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: non-integer ``y_true``, a non-numeric ``margin``.
      ValueError: ``y_true`` of the wrong shape, a non-finite ``margin``.

    Examples:
      >>> import jaxloss
      >>> scores = [[2.0, 1.5, 0.0], [0.0, 0.5, 1.0]]
      >>> print(jaxloss.multiclass_hinge([0, 2], scores))
      [0.5 0.5]
      >>> print(jaxloss.multiclass_hinge([0, 1], scores, margin=0.0))  # the perceptron loss
      [0.  0.5]

    Notes:
      A label outside ``[0, K)`` gives ``NaN`` for that sample (optax's one-hot would silently score
      it against an all-zero target); other samples are unaffected.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A label outside ``[0, C)`` makes that sample's loss NaN; the other samples are exact.
    """
    margin = c.check_option("multiclass_hinge", "margin", margin, _MARGIN)
    y_true, y_pred = _scores_and_labels("multiclass_hinge", y_true, y_pred)
    label_score, is_label = _label_score(y_true, y_pred)
    others = jnp.where(is_label, -jnp.inf, y_pred + margin)
    worst = jnp.max(others, axis=-1, keepdims=True)
    return jnp.maximum(worst - label_score, 0.0)[..., 0]


class MulticlassHinge(Loss, function=multiclass_hinge, inputs="sparse_categorical"):
    """Class handle of :func:`multiclass_hinge`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MulticlassHinge(margin=1.0)
      >>> print(loss([0, 2], [[2.0, 1.5, 0.0], [0.0, 0.5, 1.0]]))
      0.5
    """

    margin: float = option(default=1.0, check=_MARGIN)


def multi_margin(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    p: int = 1,
    margin: float = 1.0,
    class_weight: ArrayLike | None = None,
) -> jax.Array:
    """Weston-Watkins multiclass hinge (``torch.nn.MultiMarginLoss``): every violation counts.

    ``loss = sum_{i != y} w_y * max(0, margin - s_y + s_i) ** p / K`` for scores ``s`` over ``K``
    classes, label ``y`` and class weights ``w`` (1 when ``None``).

    Args:
      y_true: integer class indices, shape ``[batch, d0, .. dN-1]``.
      y_pred: scores, shape ``[batch, d0, .. dN-1, K]``.
      p: 1 or 2, the power of each violation.
      margin: the required gap.
      class_weight: optional ``K`` weights; a sample's loss is scaled by its label's weight.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: non-integer ``y_true``, an option of the wrong kind.
      ValueError: ``y_true`` of the wrong shape, ``p`` not 1 or 2, ``class_weight`` without one
        value per class.

    Examples:
      >>> import numpy as np, jaxloss
      >>> scores = [[0.1, 0.2, 0.4, 0.8]]
      >>> print(np.asarray(jaxloss.multi_margin([3], scores)).round(4))  # torch's doc example
      [0.325]

    Notes:
      The weight multiplies the powered violation, as torch computes it (torch's documentation
      puts it inside the power; the kernel does not). A label outside ``[0, K)`` gives ``NaN``.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A label outside ``[0, C)`` makes that sample's loss NaN; the other samples are exact.
    """
    p = c.check_option("multi_margin", "p", p, _POWER)
    margin = c.check_option("multi_margin", "margin", margin, _MARGIN)
    y_true, y_pred = _scores_and_labels("multi_margin", y_true, y_pred)
    k = y_pred.shape[-1]
    weights = _class_weights("multi_margin", class_weight, k, y_pred.dtype)
    label_score, is_label = _label_score(y_true, y_pred)
    violation = jnp.maximum(margin - label_score + y_pred, 0.0)
    if p == 2:
        violation = jnp.square(violation)
    loss = jnp.sum(jnp.where(is_label, 0.0, violation), axis=-1) / k
    if weights is not None:
        loss = loss * jnp.take(weights, jnp.clip(y_true, 0, k - 1))
    return loss


class MultiMargin(Loss, function=multi_margin, inputs="sparse_categorical"):
    """Class handle of :func:`multi_margin`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MultiMargin(p=2, margin=0.5)
      >>> print(f"{float(loss([3], [[0.1, 0.2, 0.4, 0.8]])):.4f}")
      0.0025
    """

    p: int = option(default=1, check=_POWER)
    margin: float = option(default=1.0, check=_MARGIN)
    class_weight: tuple[float, ...] | None = option(default=None, check=c.PER_CLASS_WEIGHTS)


def multilabel_soft_margin(
    y_true: ArrayLike, y_pred: ArrayLike, class_weight: ArrayLike | None = None
) -> jax.Array:
    """Multi-label one-vs-all logistic loss (``torch.nn.MultiLabelSoftMarginLoss``).

    ``loss = mean_c w_c * (-y_c log sigmoid(s_c) - (1 - y_c) log sigmoid(-s_c))`` over the last
    axis, computed by the fused sigmoid cross-entropy kernel.

    Args:
      y_true: multi-hot targets in ``{0, 1}`` (soft targets in ``[0, 1]`` work too), shape
        ``[batch, d0, .. dN-1, K]``.
      y_pred: scores (logits), same shape.
      class_weight: optional ``K`` weights, one per class.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: an option of the wrong kind.
      ValueError: shapes that do not match, ``class_weight`` without one value per class.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Targets outside ``[0, 1]`` are used as given (the loss is linear in them).

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.multilabel_soft_margin([[1.0, 0.0, 1.0]], [[2.0, -1.0, 0.0]])
      >>> print(np.asarray(loss).round(4))
      [0.3778]
    """
    y_true, y_pred = c.match_shapes("multilabel_soft_margin", y_true, y_pred)
    weights = _class_weights("multilabel_soft_margin", class_weight, y_pred.shape[-1], y_pred.dtype)
    per_class = ops.sigmoid_binary_cross_entropy(y_pred, jnp.broadcast_to(y_true, y_pred.shape))
    if weights is not None:
        per_class = per_class * weights
    return jnp.mean(per_class, axis=-1)


class MultilabelSoftMargin(Loss, function=multilabel_soft_margin, inputs="binary"):
    """Class handle of :func:`multilabel_soft_margin`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MultilabelSoftMargin(class_weight=(1.0, 1.0, 1.0))
      >>> print(f"{float(loss([[1.0, 0.0, 1.0]], [[2.0, -1.0, 0.0]])):.4f}")
      0.3778
    """

    class_weight: tuple[float, ...] | None = option(default=None, check=c.PER_CLASS_WEIGHTS)


def multilabel_margin(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Multi-label pairwise hinge (``torch.nn.MultiLabelMarginLoss``).

    ``loss = sum_{j in T} sum_{i not in T} max(0, 1 - (s_j - s_i)) / K``, where the positive set
    ``T`` is read from ``y_true``: class indices up to the first ``-1`` (the rest is ignored).

    Args:
      y_true: integer class indices, shape ``[batch, d0, .. dN-1, K]`` (the shape of the scores),
        each row listing the positive classes and padded with ``-1``.
      y_pred: scores, shape ``[batch, d0, .. dN-1, K]``.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: non-integer ``y_true``.
      ValueError: shapes that differ.

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.multilabel_margin([[3, 0, -1, 1]], [[0.1, 0.2, 0.4, 0.8]])
      >>> print(np.asarray(loss).round(4))  # torch's doc example
      [0.85]

    Notes:
      A positive class listed twice counts twice (as in torch). An index outside ``[0, K)``
      before the first ``-1`` gives ``NaN`` for that sample. A row with no positive class (or
      with every class positive) has loss 0.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. An index outside ``[0, C)`` before the first -1 makes that sample's loss NaN.
    """
    name = "multilabel_margin"
    y_pred = c.as_float(y_pred, loss=name, arg="y_pred")
    y_true = c.as_input_array(name, "y_true", y_true)
    c.check_rank(name, "y_pred", y_pred, 2)
    c.check_integer(name, "y_true", y_true)
    _require_classes(name, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: `y_true` must have the shape of `y_pred` {tuple(y_pred.shape)}; "
            f"got {tuple(y_true.shape)}."
        )
    k = y_pred.shape[-1]
    y_true = y_true.astype(jnp.int32)
    listed = jnp.cumprod(y_true != -1, axis=-1).astype(bool)
    in_range = (y_true >= 0) & (y_true < k)
    bad = jnp.any(listed & ~in_range, axis=-1)
    # [.., j, i]: whether listed entry j names class i.
    names = listed[..., :, None] & (y_true[..., :, None] == jnp.arange(k))
    positive = jnp.any(names, axis=-2)
    positive_score = jnp.sum(jnp.where(names, y_pred[..., None, :], 0.0), axis=-1)
    pairs = jnp.maximum(1.0 - positive_score[..., :, None] + y_pred[..., None, :], 0.0)
    pairs = jnp.where(listed[..., :, None] & ~positive[..., None, :], pairs, 0.0)
    loss = jnp.sum(pairs, axis=(-2, -1)) / k
    return jnp.where(bad, jnp.nan, loss)


class MultilabelMargin(Loss, function=multilabel_margin, inputs="multilabel_indices"):
    """Class handle of :func:`multilabel_margin`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MultilabelMargin()
      >>> print(f"{float(loss([[3, 0, -1, 1]], [[0.1, 0.2, 0.4, 0.8]])):.4f}")
      0.8500
    """


def binary_sparsemax_loss(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Binary sparsemax loss: the sparsemax loss of two classes, a hinge with a quadratic knee.

    ``loss = mean(sparse_plus(-y_true * y_pred), axis=-1)`` where ``sparse_plus(x)`` is 0 for
    ``x <= -1``, ``(x + 1)^2 / 4`` for ``|x| < 1`` and ``x`` for ``x >= 1`` (optax's
    ``sparsemax_loss``, Blondel et al. 2020, section 4.4). It is 0 exactly when
    ``sparse_sigmoid(y_pred)`` equals the 0/1 label.

    Args:
      y_true: signed targets in ``{-1, 1}`` (a ``{0, 1}`` array is converted), shape
        ``[batch, d0, .. dN]``.
      y_pred: raw scores, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Notes:
      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. Labels in {0, 1} become -1/+1 only when every label of the call is 0 or 1 (Keras'
      rule): one label outside {0, 1} (NaN included) leaves all labels as given, so it changes the
      other samples' losses too.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.binary_sparsemax_loss([[1.0, 0.0]], [[0.0, -3.0]]))
      [0.125]
    """
    y_true, y_pred = c.match_shapes("binary_sparsemax_loss", y_true, y_pred)
    return jnp.mean(jax.nn.sparse_plus(-_signed(y_true) * y_pred), axis=-1)


class BinarySparsemaxLoss(Loss, function=binary_sparsemax_loss, inputs="binary"):
    """Class handle of :func:`binary_sparsemax_loss`.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.BinarySparsemaxLoss()([[1.0, 0.0]], [[0.0, -3.0]]))
      0.125
    """
