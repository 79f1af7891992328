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
0.1923
>>> print(jaxloss.Dice(axis=(1, 2), reduction=None)(y_true, y_pred))
[0.15789479 0.21212125]
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

      Bad values: With the default ``axis=None`` (one ratio over the batch) NaN anywhere makes the
      loss NaN; with per-sample axes (``axis=(1, 2, 3)``) NaN in a sample's inputs makes that
      sample's loss NaN and the other samples are exact. Masks and probabilities outside ``[0, 1]``
      are not clipped, so the loss can leave ``[0, 1]``; ``inf`` gives NaN. An empty batch is two
      empty masks: 1.
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
      0.6164
    """

    axis: int | tuple[int, ...] | None = option(default=None, check=c.AXES)

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

      Bad values: With the default ``axis=None`` (one ratio over the batch) NaN anywhere makes the
      loss NaN; with per-sample axes (``axis=(1, 2, 3)``) NaN in a sample's inputs makes that
      sample's loss NaN and the other samples are exact. Masks and probabilities outside ``[0, 1]``
      are not clipped, so the loss can leave ``[0, 1]``; ``inf`` gives NaN. An empty batch is two
      empty masks: 1.
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

    alpha: float = option(default=0.5, check=c.NON_NEGATIVE)
    beta: float = option(default=0.5, check=c.NON_NEGATIVE)
    axis: int | tuple[int, ...] | None = option(default=None, check=c.AXES)

    def statistics(self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any) -> Any:
        if self.axis is not None:
            return None
        return _overlap_sums(type(self).__name__, y_true, y_pred, None, sample_weight)

    def from_statistics(self, statistics: Any) -> jax.Array:
        tp, total_true, total_pred = statistics
        return _tversky_ratio(tp, total_true, total_pred, self.alpha, self.beta)


# --- Dice with smoothing, generalized Dice, and the optax signatures ------------------------
#
# optax's Dice family (``dice_loss``, ``binary_dice_loss``, ``multiclass_generalized_dice_loss``)
# smooths the ratio as ``1 - (I + smooth) / (I + alpha (P - I) + beta (T - I) + smooth)`` with
# ``I = sum(p t)``, ``P = sum(p)``, ``T = sum(t)`` per sample and class. ``binary_dice`` and
# ``generalized_dice`` are the Keras-style faces; their class handles are batch statistics.


def _dice_probabilities(y_pred: jax.Array, from_logits: bool) -> jax.Array:
    if not from_logits:
        return y_pred
    if y_pred.shape[-1] == 1:
        return jax.nn.sigmoid(y_pred)
    return jax.nn.softmax(y_pred, axis=-1)


def _smoothed_dice(
    intersection: jax.Array,
    pred_sum: jax.Array,
    true_sum: jax.Array,
    smooth: Any,
    alpha: Any = 0.5,
    beta: Any = 0.5,
) -> jax.Array:
    """``1 - (I + s) / (I + alpha (P - I) + beta (T - I) + s)``, 0 where both sides are 0."""
    num = intersection + smooth
    den = intersection + alpha * (pred_sum - intersection) + beta * (true_sum - intersection)
    den = den + smooth
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num), 1.0 - num / safe)


def _sample_weight_like(sample_weight: Any, x: jax.Array) -> jax.Array:
    """A ``[batch]`` (or broadcastable) sample weight lined up with ``x`` on its leading axes."""
    if sample_weight is None:
        return jnp.ones(x.shape[:1], x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    w = jnp.asarray(sample_weight, x.dtype)
    return w.reshape(w.shape + (1,) * (x.ndim - w.ndim))


def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: ArrayLike = 1.0,
    alpha: ArrayLike = 0.5,
    beta: ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: Any = None,
) -> jax.Array:
    """optax's ``dice_loss``: the smoothed Tversky/Dice loss per sample and class.

    ``dice_c = 1 - (I_c + smooth) / (I_c + alpha (P_c - I_c) + beta (T_c - I_c) + smooth)`` with
    the sums over ``axis`` (default: every axis but the first and the last), times
    ``class_weights``, without class 0 when ``ignore_background``, then reduced over classes.

    Args:
      predictions: logits (``apply_softmax``: softmax, or sigmoid for one class) or
        probabilities, ``[batch, ..., C]`` (a missing trailing class axis is added).
      targets: one-hot or binary targets, the same shape.
      class_weights: optional ``[C]`` weights multiplying each class's loss.
      smooth, alpha, beta: as in the formula.
      apply_softmax: turn ``predictions`` into probabilities first.
      reduction: over classes: ``"mean"``, ``"sum"`` or ``"none"``.
      ignore_background: drop class 0 (when there is more than one class).
      axis: the summed axes.

    Returns:
      ``[batch]`` (``"mean"``/``"sum"``) or ``[batch, C]`` (``"none"``).

    Raises:
      ValueError: shapes that differ; an unknown ``reduction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss._segmentation import dice_loss
      >>> logits = jnp.array([[1.0, -1.0], [0.5, 0.5]])
      >>> targets = jnp.array([[1.0, 0.0], [1.0, 0.0]])
      >>> print(dice_loss(logits[..., None], targets[..., None]))
      [0.1344707  0.23557574]

    Notes:
      optax raises when ``apply_softmax=False`` and the class probabilities do not sum to 1 (a
      check on concrete values, which also refuses every ``binary_dice_loss(apply_sigmoid=False)``
      input but all-ones); this version does not check, so it also works under ``jit``.
    """
    name = "dice_loss"
    predictions = c.as_float(predictions, loss=name, arg="predictions")
    targets = c.as_input_array(name, "targets", targets).astype(predictions.dtype)
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    if predictions.shape != targets.shape:
        raise ValueError(
            f"{name}: `predictions` and `targets` must have the same shape; got "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}."
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: `reduction` must be 'mean', 'sum' or 'none'; got {reduction!r}.")
    probs = _dice_probabilities(predictions, apply_softmax)
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    intersection = jnp.sum(probs * targets, axis=axis)
    per_class = _smoothed_dice(
        intersection,
        jnp.sum(probs, axis=axis),
        jnp.sum(targets, axis=axis),
        smooth,
        alpha,
        beta,
    )
    if class_weights is not None:
        weights = c.as_float(class_weights, per_class.dtype, name, "class_weights")
        c.check_rank(name, "class_weights", weights, 1)
        per_class = per_class * weights
    if ignore_background and probs.shape[-1] > 1:
        per_class = per_class[..., 1:]
    if reduction == "mean":
        return jnp.mean(per_class, axis=-1)
    if reduction == "sum":
        return jnp.sum(per_class, axis=-1)
    return per_class


def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    """optax's ``binary_dice_loss``: :func:`dice_loss` of one class, per sample.

    A ``[batch, ...]`` input without a trailing class axis of 1 gets one, so the sums run over
    every axis but the batch axis.

    Examples:
      >>> from jaxloss._segmentation import binary_dice_loss
      >>> print(binary_dice_loss([[2.0, -2.0, 0.0]], [[1.0, 0.0, 1.0]]))
      [0.13425565]
    """
    predictions = c.as_float(predictions, loss="binary_dice_loss", arg="predictions")
    targets = c.as_input_array("binary_dice_loss", "targets", targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(
        predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean"
    )


def _generalized_statistics(
    loss: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sample_weight: Any,
    smooth: Any,
    from_logits: bool,
) -> dict[str, jax.Array]:
    """Class frequencies, the weighted per-class Dice sums over samples, and the sample count."""
    y_pred = c.as_float(y_pred, loss=loss, arg="y_pred")
    y_true = c.as_input_array(loss, "y_true", y_true).astype(y_pred.dtype)
    c.check_rank(loss, "y_pred", y_pred, 2)
    if y_pred.shape[-1] == 0:
        raise ValueError(
            f"{loss}: `y_pred` must have at least one class; got shape {y_pred.shape}."
        )
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{loss}: `y_true` must be one-hot with the shape of `y_pred`; got "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}."
        )
    probs = _dice_probabilities(y_pred, from_logits)
    axis = tuple(range(1, probs.ndim - 1))
    per_class = _smoothed_dice(
        jnp.sum(probs * y_true, axis=axis),
        jnp.sum(probs, axis=axis),
        jnp.sum(y_true, axis=axis),
        smooth,
    )
    weight = _sample_weight_like(sample_weight, per_class[:, :1])
    return {
        "class_frequency": jnp.sum(y_true, axis=tuple(range(y_true.ndim - 1))),
        "dice_sum": jnp.sum(weight * per_class, axis=0),
        "count": jnp.sum(jnp.broadcast_to(weight, per_class[:, :1].shape)),
    }


def _generalized_from_statistics(stats: dict[str, jax.Array], ignore_background: bool) -> jax.Array:
    frequency = stats["class_frequency"]
    classes = frequency.shape[-1]
    # Sudre et al.'s inverse squared frequencies, rescaled to sum to the number of classes
    # (optax's normalisation, which keeps the loss on the scale of plain Dice).
    weights = 1.0 / (frequency**2 + 1e-7)
    weights = weights / jnp.sum(weights) * classes
    first = 1 if ignore_background and classes > 1 else 0
    total = jnp.sum(weights[first:] * stats["dice_sum"][first:])
    den = stats["count"] * (classes - first)
    return jnp.where(den == 0, 0.0, total / jnp.where(den == 0, 1.0, den))


def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    """optax's ``multiclass_generalized_dice_loss``: :func:`generalized_dice` from logits.

    Examples:
      >>> from jaxloss._segmentation import multiclass_generalized_dice_loss
      >>> logits = [[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]
      >>> targets = [[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]]
      >>> print(f"{float(multiclass_generalized_dice_loss(logits, targets)):.6f}")
      0.186008
    """
    name = "multiclass_generalized_dice_loss"
    stats = _generalized_statistics(name, targets, predictions, None, smooth, apply_softmax)
    return _generalized_from_statistics(stats, ignore_background)


def generalized_dice(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    smooth: float = 1.0,
    from_logits: bool = False,
    ignore_background: bool = False,
) -> jax.Array:
    """Generalized Dice: per-class smoothed Dice weighted by inverse squared class frequencies.

    With ``f_c`` the number of class-``c`` pixels in the whole batch,
    ``w_c = C (f_c^2 + 1e-7)^-1 / sum_k (f_k^2 + 1e-7)^-1`` and, per image ``b`` and class ``c``
    (sums over the spatial axes), ``d_bc = 1 - (I + smooth) / ((P + T) / 2 + smooth)``:
    ``loss = mean_{b, c} w_c d_bc`` (optax's ``multiclass_generalized_dice_loss``, Sudre et al.
    2017). Rare classes weigh more, which helps with heavily unbalanced masks.

    Args:
      y_true: one-hot masks ``[batch, ..., C]``.
      y_pred: class probabilities (or logits with ``from_logits``: softmax, or sigmoid for one
        class), the same shape.
      smooth: added to both sides of each ratio, >= 0.
      from_logits: whether ``y_pred`` holds logits.
      ignore_background: leave class 0 out of the mean (its weight still counts in the
        normalisation, as in optax).

    Returns:
      A scalar: the class weights depend on the whole batch, so the loss is one batch statistic.

    Raises:
      TypeError: non-numeric inputs; options of the wrong type.
      ValueError: shapes that differ; rank < 2; a negative ``smooth``.

    Examples:
      >>> import jaxloss
      >>> y_true = [[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]]
      >>> y_pred = [[[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]]
      >>> print(f"{float(jaxloss.generalized_dice(y_true, y_pred)):.6f}")
      0.168760

    Notes:
      A class absent from the batch gets the largest weight (``1 / 1e-7`` before rescaling);
      its Dice term is ``1 - smooth / (P / 2 + smooth)``, which pushes its probabilities to 0.

      Bad values: One ratio over the batch: NaN anywhere makes the loss NaN. Masks and probabilities
      outside ``[0, 1]`` and probabilities that do not sum to 1 are used as given (not clipped or
      renormalised); ``inf`` gives NaN. An empty batch gives 0.
    """
    smooth = c.check_option("generalized_dice", "smooth", smooth, c.NON_NEGATIVE)
    from_logits = c.check_option("generalized_dice", "from_logits", from_logits, c.BOOL)
    ignore_background = c.check_option(
        "generalized_dice", "ignore_background", ignore_background, c.BOOL
    )
    stats = _generalized_statistics("generalized_dice", y_true, y_pred, None, smooth, from_logits)
    return _generalized_from_statistics(stats, ignore_background)


class GeneralizedDice(Loss, function=generalized_dice, inputs="segmentation_multiclass"):
    """Class handle of :func:`generalized_dice`, a batch statistic.

    ``sample_weight`` (``[batch]``) weighs each image's Dice terms; the class frequencies, the
    weighted Dice sums and the image count are summed across devices with ``axis_name`` before
    the ratio, so ``shard_map`` over a sharded batch gives the loss of the global batch.
    ``reduction`` has no effect.

    Examples:
      >>> import jaxloss
      >>> y_true = [[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]]
      >>> y_pred = [[[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]]
      >>> print(f"{float(jaxloss.GeneralizedDice()(y_true, y_pred)):.6f}")
      0.168760
    """

    smooth: float = option(default=1.0, check=c.NON_NEGATIVE)
    from_logits: bool = option(default=False, check=c.BOOL)
    ignore_background: bool = option(default=False, check=c.BOOL)

    def statistics(
        self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any
    ) -> dict[str, jax.Array]:
        del inputs
        return _generalized_statistics(
            type(self).__name__, y_true, y_pred, sample_weight, self.smooth, self.from_logits
        )

    def from_statistics(self, statistics: Any) -> jax.Array:
        return _generalized_from_statistics(statistics, self.ignore_background)


def _binary_dice_sums(
    loss: str, y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool, axis: Any, weight: Any
) -> tuple[jax.Array, jax.Array, jax.Array]:
    if from_logits:
        y_pred = jax.nn.sigmoid(c.as_float(y_pred, loss=loss, arg="y_pred"))
    return _overlap_sums(loss, y_true, y_pred, axis, weight)


def binary_dice(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    smooth: float = 1.0,
    from_logits: bool = False,
    axis: int | tuple[int, ...] | None = None,
) -> jax.Array:
    """Binary Dice with smoothing: ``1 - (I + smooth) / ((P + T) / 2 + smooth)``.

    ``I = sum(y_true y_pred)``, ``P = sum(y_pred)``, ``T = sum(y_true)`` over ``axis``; the
    same as ``(2 I + 2 smooth) / (P + T + 2 smooth)``, optax's smoothing.

    Args:
      y_true: binary masks in ``[0, 1]``, any shape.
      y_pred: probabilities (or logits with ``from_logits``: sigmoid), the same shape.
      smooth: added to both sides of the ratio, >= 0; keeps empty masks at loss 0.
      from_logits: whether ``y_pred`` holds logits.
      axis: the summed axes. ``None`` (default, like Keras' ``dice``) sums over the whole batch
        and gives one scalar (a batch statistic); every axis but 0 gives one loss per image,
        optax's ``binary_dice_loss``.

    Returns:
      The loss with ``axis`` reduced (a scalar for ``axis=None``).

    Raises:
      TypeError: non-numeric inputs; options of the wrong type.
      ValueError: shapes that do not match; a negative ``smooth``; an axis out of range.

    Examples:
      >>> import jaxloss
      >>> y_true = [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
      >>> y_pred = [[0.9, 0.2, 0.6], [0.1, 0.0, 0.0]]
      >>> print(jaxloss.binary_dice(y_true, y_pred, axis=1))
      [0.12280697 0.04761899]
      >>> print(f"{float(jaxloss.binary_dice(y_true, y_pred)):.6f}")
      0.137931

    Notes:
      With ``smooth=0``, two empty masks give 0 (0/0 is taken as a perfect match).

      Bad values: With the default ``axis=None`` (one ratio over the batch) NaN anywhere makes the
      loss NaN; with per-sample axes (``axis=(1, 2, 3)``) NaN in a sample's inputs makes that
      sample's loss NaN and the other samples are exact. Masks and probabilities outside ``[0, 1]``
      are not clipped, so the loss can leave ``[0, 1]``; ``inf`` gives NaN. An empty batch gives 0.
    """
    smooth = c.check_option("binary_dice", "smooth", smooth, c.NON_NEGATIVE)
    from_logits = c.check_option("binary_dice", "from_logits", from_logits, c.BOOL)
    axis = c.check_option("binary_dice", "axis", axis, c.AXES)
    tp, true_sum, pred_sum = _binary_dice_sums(
        "binary_dice", y_true, y_pred, from_logits, axis, None
    )
    return _smoothed_dice(tp, pred_sum, true_sum, smooth)


class BinaryDice(Loss, function=binary_dice, inputs="segmentation"):
    """Class handle of :func:`binary_dice`; with ``axis=None`` a batch statistic.

    With ``axis=None`` the three sums are taken over the whole batch (weighted per sample by
    ``sample_weight``) and across devices with ``axis_name`` before the ratio, so ``shard_map``
    over a sharded batch gives the loss of the global batch; otherwise the per-image losses are
    reduced as usual.

    Examples:
      >>> import jaxloss
      >>> y_true = [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
      >>> y_pred = [[0.9, 0.2, 0.6], [0.1, 0.0, 0.0]]
      >>> print(f"{float(jaxloss.BinaryDice()(y_true, y_pred)):.6f}")
      0.137931
      >>> print(f"{float(jaxloss.BinaryDice(axis=1)(y_true, y_pred)):.6f}")
      0.085213
    """

    smooth: float = option(default=1.0, check=c.NON_NEGATIVE)
    from_logits: bool = option(default=False, check=c.BOOL)
    axis: int | tuple[int, ...] | None = option(default=None, check=c.AXES)

    def statistics(self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any) -> Any:
        del inputs
        if self.axis is not None:
            return None
        name = type(self).__name__
        return _binary_dice_sums(name, y_true, y_pred, self.from_logits, None, sample_weight)

    def from_statistics(self, statistics: Any) -> jax.Array:
        tp, true_sum, pred_sum = statistics
        return _smoothed_dice(tp, pred_sum, true_sum, self.smooth)
