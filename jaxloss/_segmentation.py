"""Segmentation losses: ``y_true`` masks in [0, 1] and ``y_pred`` probabilities of the same shape.

``axis`` names the summed axes. ``None`` (Keras' default) sums over the whole batch, so the loss is
one ratio over the batch (a *batch statistic*): the class handles compute its sums with
:meth:`~jaxloss.Loss.statistics`, add them across ``axis_name`` under ``shard_map``, and divide
once, so a sharded batch gives the global value. With ``axis=None`` a ``sample_weight`` weights
each sample's contribution to those sums (a weight of 0 drops the sample), where Keras scales the
finished ratio; with an ``axis`` it weights the per-sample losses as for every loss.

>>> import jaxloss
>>> y_true = [[[1.0], [0.0]], [[1.0], [1.0]]]
>>> y_pred = [[[0.8], [0.1]], [[0.4], [0.9]]]
>>> print(f"{float(jaxloss.dice(y_true, y_pred)):.4f}")
0.1538
>>> print(jaxloss.Dice(axis=(1, 2), reduction=None)(y_true, y_pred))
[0.11111116 0.17647064]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option

# Keras' backend.epsilon(): keeps the ratios finite for empty masks.
EPSILON = 1e-7


def _overlap_sums(
    name: str, y_true: ArrayLike, y_pred: ArrayLike, axis: Any, sample_weight: Any = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(sum(t p), sum(t), sum(p))`` over ``axis``; a sample weight scales each sample's terms."""
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    y_true = jnp.broadcast_to(y_true, y_pred.shape)
    axes = c.normalize_axes(name, "y_pred", axis, y_pred.ndim)
    w = jnp.ones((), y_pred.dtype)
    if sample_weight is not None:
        w = c.as_float(sample_weight, loss=name, arg="sample_weight").astype(y_pred.dtype)
        if w.ndim > y_pred.ndim or (w.size != 1 and w.shape != y_pred.shape[: w.ndim]):
            raise ValueError(
                f"{name}: `sample_weight` of shape {tuple(w.shape)} must be a scalar or line up "
                f"with the leading axes of `y_pred` {tuple(y_pred.shape)}."
            )
        w = w.reshape(w.shape + (1,) * (y_pred.ndim - w.ndim)) if w.size != 1 else w.reshape(())
    return (
        jnp.sum(w * y_true * y_pred, axis=axes),
        jnp.sum(w * y_true, axis=axes),
        jnp.sum(w * y_pred, axis=axes),
    )


def _dice_ratio(tp: jax.Array, total_true: jax.Array, total_pred: jax.Array) -> jax.Array:
    return 1.0 - 2.0 * tp / (total_true + total_pred + EPSILON)


def dice(
    y_true: ArrayLike, y_pred: ArrayLike, axis: int | tuple[int, ...] | None = None
) -> jax.Array:
    """Dice loss, ``1 - 2|X ∩ Y| / (|X| + |Y|)``, for segmentation masks and probabilities.

    ``loss = 1 - 2 sum(y_true * y_pred, axis) / (sum(y_true, axis) + sum(y_pred, axis) + 1e-7)``

    Args:
      y_true: targets in ``[0, 1]``, shape ``[batch, ...]``.
      y_pred: predicted probabilities, same shape.
      axis: axes summed over; ``None`` (Keras' default) sums over everything and returns a
        scalar; ``(1, 2, 3)`` on ``[batch, H, W, C]`` gives one loss per image.

    Returns:
      The loss with ``axis`` reduced.

    Raises:
      TypeError: ``axis`` not None, an int or a tuple of ints.
      ValueError: shapes that do not match or broadcast; an ``axis`` out of range or repeated.

    Examples:
      >>> import jaxloss
      >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
      >>> y_pred = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
      >>> print(jaxloss.dice(y_true, y_pred, axis=(1, 2, 3)))
      [0.5 0.7575758]

    Notes:
      Two empty masks give 1, as in Keras (no overlap to reward; the epsilon keeps the ratio
      finite, so the gradient is finite too).
    """
    axis = c.check_option("dice", "axis", axis, c.AXES)
    return _dice_ratio(*_overlap_sums("dice", y_true, y_pred, axis))


class Dice(Loss, function=dice, inputs="segmentation"):
    """Class handle of :func:`dice`; with ``axis=None`` a batch statistic (exact when sharded).

    Args:
      axis: axes summed over; ``None`` (default, as Keras) gives one loss for the whole batch.

    Examples:
      >>> import jaxloss
      >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
      >>> y_pred = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
      >>> print(jaxloss.Dice(axis=(1, 2, 3), reduction=None)(y_true, y_pred))
      [0.5 0.7575758]
      >>> print(f"{float(jaxloss.Dice()(y_true, y_pred)):.4f}")
      0.6231
    """

    axis: int | tuple[int, ...] | None = option(None, c.AXES)

    def statistics(self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any) -> Any:
        if self.axis is not None:
            return None
        return _overlap_sums(type(self).__name__, y_true, y_pred, None, sample_weight)

    def from_statistics(self, statistics: Any) -> jax.Array:
        return _dice_ratio(*statistics)


def _tversky_ratio(
    tp: jax.Array, total_true: jax.Array, total_pred: jax.Array, alpha: float, beta: float
) -> jax.Array:
    missed, spurious = total_true - tp, total_pred - tp
    return 1.0 - tp / (tp + alpha * missed + beta * spurious + EPSILON)


def tversky(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: int | tuple[int, ...] | None = None,
) -> jax.Array:
    """Tversky loss: Dice with separate weights on false positives and false negatives.

    ``loss = 1 - TP / (TP + alpha FN + beta FP + 1e-7)`` with ``TP = sum(y_true y_pred)``,
    ``FN = sum(y_true (1 - y_pred))``, ``FP = sum((1 - y_true) y_pred)`` over ``axis``.
    ``alpha = beta = 0.5`` is the Dice loss.

    Keras compatibility: the Keras 3 docs describe ``alpha`` as the false-positive weight, but
    Keras 3 computes the formula above (``alpha`` multiplies the missed-target mass). jaxloss
    matches Keras' numbers, so a model ported from Keras trains identically.

    Args:
      y_true: targets in ``[0, 1]``, shape ``[batch, ...]``.
      y_pred: predicted probabilities, same shape.
      alpha: weight of ``sum(y_true (1 - y_pred))`` (see the compatibility note), >= 0.
      beta: weight of ``sum((1 - y_true) y_pred)``, >= 0.
      axis: axes summed over; ``None`` sums over everything (scalar).

    Returns:
      The loss with ``axis`` reduced.

    Raises:
      TypeError: an option of the wrong type.
      ValueError: negative ``alpha``/``beta``; shapes that do not match or broadcast; an
        ``axis`` out of range or repeated.

    Examples:
      >>> import jaxloss
      >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
      >>> y_pred = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
      >>> print(jaxloss.tversky(y_true, y_pred, alpha=0.3, beta=0.7, axis=(1, 2, 3)))
      [0.5 0.7350993]

    Notes:
      Two empty masks give 1 (no true positives); the epsilon keeps the ratio finite.
    """
    alpha = c.check_option("tversky", "alpha", alpha, c.NON_NEGATIVE)
    beta = c.check_option("tversky", "beta", beta, c.NON_NEGATIVE)
    axis = c.check_option("tversky", "axis", axis, c.AXES)
    return _tversky_ratio(*_overlap_sums("tversky", y_true, y_pred, axis), alpha, beta)


class Tversky(Loss, function=tversky, inputs="segmentation"):
    """Class handle of :func:`tversky`; with ``axis=None`` a batch statistic (exact when sharded).

    Args:
      alpha: weight of ``sum(y_true (1 - y_pred))``, >= 0 (default 0.5); see :func:`tversky`.
      beta: weight of ``sum((1 - y_true) y_pred)``, >= 0 (default 0.5).
      axis: axes summed over; ``None`` (default) gives one loss for the whole batch.

    Examples:
      >>> import jaxloss
      >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
      >>> y_pred = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
      >>> loss = jaxloss.Tversky(alpha=0.3, beta=0.7, axis=(1, 2, 3), reduction=None)
      >>> print(loss(y_true, y_pred))
      [0.5 0.7350993]
    """

    alpha: float = option(0.5, c.NON_NEGATIVE)
    beta: float = option(0.5, c.NON_NEGATIVE)
    axis: int | tuple[int, ...] | None = option(None, c.AXES)

    def statistics(self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any) -> Any:
        if self.axis is not None:
            return None
        return _overlap_sums(type(self).__name__, y_true, y_pred, None, sample_weight)

    def from_statistics(self, statistics: Any) -> jax.Array:
        return _tversky_ratio(*statistics, self.alpha, self.beta)
