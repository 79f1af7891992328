"""Cross-entropy losses: binary targets, class probabilities, or integer labels against predicted
probabilities (or logits with ``from_logits=True``).

Semantics are Keras 3's. ``from_logits=True`` goes through the kernels of :mod:`jaxloss.ops`
(hand-written gradients, float32 math for bfloat16/float16 inputs, exact log-sigmoid /
log-softmax), using their forward-mode-capable variants, so ``jax.jvp``, ``jax.jacfwd`` and
``jax.hessian`` work through every class as with Keras and optax. ``from_logits=False`` clips the
probabilities to ``[1e-7, 1 - 1e-7]`` and renormalises categorical ones (see
``jaxloss._probability``).

Integer labels must have an integer dtype (``TypeError`` otherwise). A label outside
``[0, num_classes)`` that is not ``ignore_class`` gives a ``NaN`` loss for its own element only
(Keras silently gives 0); see :func:`jaxloss.ops.sparse_softmax_cross_entropy`.

Deliberate departures from Keras 3.15, for degenerate inputs: ``label_smoothing`` counts the
classes along ``axis`` (Keras counts the last axis); an all-zero probability vector gives a finite
loss (Keras divides 0 by 0); ``categorical_generalized_cross_entropy`` is linear in ``p`` below
``p = 1e-7``, so its gradient at ``p = 0`` is finite.

>>> import jaxloss
>>> print(f"{float(jaxloss.SparseCategoricalCrossentropy()([1], [[0.1, 0.9]])):.4f}")
0.1054
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss import _probability as prob
from jaxloss._loss import Loss, option
from jaxloss.ops import cross_entropy as _ce

_POS_WEIGHT = c.SCALAR_OR_PER_CLASS.optional()


def binary_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    pos_weight: ArrayLike | None = None,
) -> jax.Array:
    """Binary cross-entropy, averaged over ``axis``.

    ``loss = mean(-(pos_weight * y log p + (1 - y) log(1 - p)), axis)`` with
    ``y = y_true * (1 - label_smoothing) + 0.5 * label_smoothing`` and ``p = sigmoid(y_pred)``
    (``from_logits``, computed as a softplus, exact for any logit) or
    ``clip(y_pred, 1e-7, 1 - 1e-7)``.

    Args:
      y_true: targets in ``[0, 1]``, shape ``[batch, d0, .. dN]``.
      y_pred: probabilities, or logits with ``from_logits=True``; same shape.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis the mean is taken over.
      pos_weight: (beyond Keras) weight of the positive term, a scalar or one per class
        (broadcast to ``y_pred``), as in ``torch.nn.BCEWithLogitsLoss``.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast; ``label_smoothing`` out of range.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Probabilities (``from_logits=False``) are clipped to ``[1e-7, 1 - 1e-7]`` (Keras):
      values outside ``[0, 1]`` and ``inf`` give a finite loss with a zero gradient there; targets
      outside ``[0, 1]`` are used as given (the loss can then be negative).

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
      >>> loss.shape
      (2,)
      >>> print(np.asarray(loss).round(3))
      [0.916 0.714]
    """
    name = "binary_crossentropy"
    from_logits = c.check_option(name, "from_logits", from_logits, c.BOOL)
    ls = c.check_option(name, "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    axis = c.check_option(name, "axis", axis, c.AXIS)
    pos_weight = c.check_option(name, "pos_weight", pos_weight, _POS_WEIGHT)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred, broadcast=False)
    axis = c.normalize_axis(name, "y_pred", axis, y_pred.ndim)
    if isinstance(pos_weight, tuple):
        c.check_num_classes(name, "pos_weight", pos_weight, y_pred.shape[-1])
    elementwise = prob.bce_elementwise(y_true, y_pred, from_logits, ls, pos_weight)
    return jnp.mean(elementwise, axis=axis)


class BinaryCrossentropy(Loss, function=binary_crossentropy, aliases=("bce",), inputs="binary"):
    """Class handle of :func:`binary_crossentropy`.

    Args:
      from_logits: whether ``y_pred`` holds logits (recommended).
      label_smoothing: in ``[0, 1]``; squeezes the targets towards 0.5.
      axis: the axis the mean is taken over.
      pos_weight: (beyond Keras) weight of the positive term: a float or one per class.

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_true, y_pred = [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]
      >>> bce = jaxloss.BinaryCrossentropy(from_logits=True)
      >>> print(f"{float(bce(y_true, y_pred)):.3f}")
      0.865
      >>> y_true, y_pred = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
      >>> print(f"{float(bce(y_true, y_pred)):.3f}")
      0.865
      >>> print(f"{float(bce(y_true, y_pred, sample_weight=[0.8, 0.2])):.4f}")  # Keras' docs: 0.243
      0.2436
      >>> bce = jaxloss.BinaryCrossentropy(from_logits=True, reduction="sum")
      >>> print(f"{float(bce(y_true, y_pred)):.4f}")  # Keras' docs: 1.730
      1.7309
      >>> bce = jaxloss.BinaryCrossentropy(from_logits=True, reduction=None)
      >>> print(np.asarray(bce(y_true, y_pred)).round(3))
      [0.235 1.496]
    """

    from_logits: bool = option(default=False, check=c.BOOL)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)
    axis: int = option(default=-1, check=c.AXIS)
    pos_weight: float | tuple[float, ...] | None = option(default=None, check=_POS_WEIGHT)


def _sample_class_weight(class_weight, y_true, axis):
    """Per-sample weight ``sum(class_weight * y_true, axis)`` (the label's weight if one-hot)."""
    w = jnp.asarray(class_weight, y_true.dtype).reshape(prob.class_axis_shape(axis, y_true.ndim))
    return jnp.sum(w * y_true, axis=axis)


def categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    class_weight: ArrayLike | None = None,
) -> jax.Array:
    """Cross-entropy between one-hot (or soft) targets and predictions along ``axis``.

    ``loss = -sum(t * log p, axis)`` with ``t = y_true * (1 - ls) + ls / num_classes``;
    ``log p = log_softmax(y_pred)`` with ``from_logits`` (through
    :func:`jaxloss.ops.softmax_cross_entropy`), else the log of the renormalised, clipped
    probabilities.

    Args:
      y_true: one-hot or soft targets, the shape of ``y_pred``.
      y_pred: probabilities, or logits with ``from_logits=True``.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the class axis.
      class_weight: (beyond Keras) one weight per class; each sample's loss is multiplied by
        ``sum(class_weight * y_true)``, i.e. the weight of its class for one-hot targets (Keras'
        ``fit(class_weight=...)`` semantics).

    Returns:
      Per-sample loss, the shape of ``y_pred`` without ``axis``.

    Raises:
      ValueError: different shapes; an option out of range; ``axis`` out of range.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. The probabilities (``from_logits=False``) are renormalised to sum to 1 along the class
      axis and clipped to ``[1e-7, 1 - 1e-7]`` (Keras), so rows that do not sum to 1 are not an
      error; targets are not checked to be one-hot or to sum to 1 and weight the log-probabilities
      as given (a negative target can make the loss negative). With logits, ``-inf`` on a class
      whose target is 0 is exact.

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_true = [[0, 1, 0], [0, 0, 1]]
      >>> y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
      >>> loss = jaxloss.categorical_crossentropy(y_true, y_pred)
      >>> loss.shape
      (2,)
      >>> print(np.asarray(loss).round(4))
      [0.0513 2.3026]
    """
    name = "categorical_crossentropy"
    from_logits = c.check_option(name, "from_logits", from_logits, c.BOOL)
    ls = c.check_option(name, "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    axis = c.check_option(name, "axis", axis, c.AXIS)
    class_weight = c.check_option(name, "class_weight", class_weight, c.PER_CLASS_WEIGHTS)
    y_true, y_pred, axis = prob.categorical_prepare(name, y_true, y_pred, axis)
    c.check_num_classes(name, "class_weight", class_weight, y_pred.shape[axis])
    if from_logits:
        loss = _ce.softmax_cross_entropy_jvp(y_pred, y_true, axis=axis, label_smoothing=ls)
    else:
        t = y_true * (1.0 - ls) + ls / y_pred.shape[axis] if ls else y_true
        _, log_p = prob.renormalized_log_probs(y_pred, axis)
        loss = -jnp.sum(t * log_p, axis=axis)
    if class_weight is not None:
        loss = loss * _sample_class_weight(class_weight, y_true, axis).astype(loss.dtype)
    return loss


class CategoricalCrossentropy(Loss, function=categorical_crossentropy, inputs="categorical"):
    """Class handle of :func:`categorical_crossentropy`.

    Args:
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the class axis.
      class_weight: (beyond Keras) one weight per class, applied per sample as
        ``sum(class_weight * y_true)``.

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_true = [[0, 1, 0], [0, 0, 1]]
      >>> y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
      >>> cce = jaxloss.CategoricalCrossentropy()
      >>> print(f"{float(cce(y_true, y_pred)):.3f}")
      1.177
      >>> print(f"{float(cce(y_true, y_pred, sample_weight=np.array([0.3, 0.7]))):.3f}")
      0.814
      >>> print(f"{float(jaxloss.CategoricalCrossentropy(reduction='sum')(y_true, y_pred)):.3f}")
      2.354
      >>> cce = jaxloss.CategoricalCrossentropy(reduction=None)
      >>> print(np.asarray(cce(y_true, y_pred)).round(4))
      [0.0513 2.3026]
    """

    from_logits: bool = option(default=False, check=c.BOOL)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)
    axis: int = option(default=-1, check=c.AXIS)
    class_weight: tuple[float, ...] | None = option(default=None, check=c.PER_CLASS_WEIGHTS)


def sparse_categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    *,
    label_smoothing: float = 0.0,
    class_weight: ArrayLike | None = None,
) -> jax.Array:
    """Cross-entropy between integer labels and predictions along ``axis``.

    ``loss = -log p[label]`` (with ``label_smoothing``: ``-(1 - ls) log p[label] - ls mean(log
    p)``), where ``log p`` is ``log_softmax(y_pred)`` with ``from_logits`` (through
    :func:`jaxloss.ops.sparse_softmax_cross_entropy`: no one-hot is ever built) or the log of the
    renormalised, clipped probabilities.

    Args:
      y_true: integer labels, the shape of ``y_pred`` without ``axis`` (or with a 1 there).
      y_pred: probabilities, or logits with ``from_logits=True``, e.g. ``[batch, classes]`` or
        ``[batch, H, W, classes]`` for segmentation.
      from_logits: whether ``y_pred`` holds logits.
      ignore_class: a label (e.g. -1 or 255, the "void" class) whose elements get a loss of 0 and a
        zero gradient. The class handle also masks them, so the mean is over valid elements only.
      axis: the class axis.
      label_smoothing: (beyond Keras) in ``[0, 1]``.
      class_weight: (beyond Keras) one weight per class; an element's loss is multiplied by the
        weight of its label.

    Returns:
      Per-element loss, the shape of ``y_pred`` without ``axis``.

    Raises:
      TypeError: non-integer labels.
      ValueError: labels whose shape does not match; an option out of range.

    Notes:
      A label outside ``[0, num_classes)`` that is not ``ignore_class`` gives ``NaN`` for that
      element only (Keras silently returns 0 there).

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A label outside ``[0, C)`` makes that sample's loss NaN; the other samples are exact. A
      sample whose label is ``ignore_class`` (never out of range) costs 0 with a zero gradient even
      if its ``y_pred`` is NaN. Probabilities are renormalised and clipped as in
      :func:`categorical_crossentropy`.

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.sparse_categorical_crossentropy([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
      >>> loss.shape
      (2,)
      >>> print(np.asarray(loss).round(4))
      [0.0513 2.3026]
    """
    name = "sparse_categorical_crossentropy"
    from_logits = c.check_option(name, "from_logits", from_logits, c.BOOL)
    ignore_class = c.check_option(name, "ignore_class", ignore_class, c.OPTIONAL_INT)
    axis = c.check_option(name, "axis", axis, c.AXIS)
    ls = c.check_option(name, "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    class_weight = c.check_option(name, "class_weight", class_weight, c.PER_CLASS_WEIGHTS)
    y_true, y_pred, axis = prob.sparse_prepare(name, y_true, y_pred, axis)
    c.check_num_classes(name, "class_weight", class_weight, y_pred.shape[axis])
    cw = None if class_weight is None else jnp.asarray(class_weight, jnp.float32)
    if from_logits:
        return _ce.sparse_softmax_cross_entropy_jvp(
            y_pred,
            y_true,
            axis=axis,
            ignore_index=ignore_class,
            label_smoothing=ls,
            class_weight=cw,
        )
    num_classes = y_pred.shape[axis]
    in_range = (y_true >= 0) & (y_true < num_classes)
    safe = jnp.where(in_range, y_true, 0)
    if ignore_class is not None:
        # An ignored row may hold anything (NaN included): replace it before the math, so that
        # its gradient is exactly zero rather than 0 * NaN.
        ignored = jnp.expand_dims(y_true == ignore_class, axis)
        y_pred = jnp.where(ignored, jnp.ones((), y_pred.dtype), y_pred)
    _, log_p = prob.renormalized_log_probs(y_pred, axis)
    picked = jnp.squeeze(jnp.take_along_axis(log_p, jnp.expand_dims(safe, axis), axis=axis), axis)
    loss = -picked if not ls else -(1.0 - ls) * picked - ls * jnp.mean(log_p, axis=axis)
    if cw is not None:
        loss = loss * cw.astype(loss.dtype)[safe]
    loss = jnp.where(in_range, loss, jnp.asarray(jnp.nan, loss.dtype))
    if ignore_class is not None:
        loss = jnp.where(y_true == ignore_class, jnp.zeros((), loss.dtype), loss)
    return loss


class SparseCategoricalCrossentropy(
    Loss, function=sparse_categorical_crossentropy, inputs="sparse_categorical"
):
    """Class handle of :func:`sparse_categorical_crossentropy`.

    With ``ignore_class``, elements whose label is ``ignore_class`` are masked: they contribute 0
    and the ``"sum_over_batch_size"``/``"mean"`` reductions divide by the number of *valid*
    elements (Keras' mask semantics; a batch with no valid element gives 0, not NaN).

    Args:
      from_logits: whether ``y_pred`` holds logits (recommended).
      ignore_class: ``None`` or the label to ignore (e.g. -1, 255).
      axis: the class axis.
      label_smoothing: (beyond Keras) in ``[0, 1]``.
      class_weight: (beyond Keras) one weight per class, multiplying each element's loss by the
        weight of its label.

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_true = [1, 2]
      >>> y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
      >>> scce = jaxloss.SparseCategoricalCrossentropy()
      >>> print(f"{float(scce(y_true, y_pred)):.3f}")
      1.177
      >>> print(f"{float(scce(y_true, y_pred, sample_weight=np.array([0.3, 0.7]))):.3f}")
      0.814
      >>> scce = jaxloss.SparseCategoricalCrossentropy(reduction="sum")
      >>> print(f"{float(scce(y_true, y_pred)):.3f}")
      2.354
      >>> scce = jaxloss.SparseCategoricalCrossentropy(reduction=None)
      >>> print(np.asarray(scce(y_true, y_pred)).round(4))
      [0.0513 2.3026]
      >>> scce = jaxloss.SparseCategoricalCrossentropy(ignore_class=-1)
      >>> print(f"{float(scce([1, -1], y_pred)):.4f}")  # the mean over the one valid element
      0.0513
    """

    from_logits: bool = option(default=False, check=c.BOOL)
    ignore_class: int | None = option(default=None, check=c.OPTIONAL_INT)
    axis: int = option(default=-1, check=c.AXIS)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)
    class_weight: tuple[float, ...] | None = option(default=None, check=c.PER_CLASS_WEIGHTS)

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> Any:
        if self.ignore_class is None:
            return None
        y_pred = jnp.asarray(y_pred)
        axis = c.normalize_axis(self, "y_pred", self.axis, y_pred.ndim)
        return prob.squeeze_sparse_labels(jnp.asarray(y_true), y_pred, axis) != self.ignore_class


def categorical_generalized_cross_entropy(
    y_true: ArrayLike, y_pred: ArrayLike, q: float = 0.5
) -> jax.Array:
    """Generalized cross-entropy (Zhang & Sabuncu, 2018), robust to noisy labels.

    ``loss = (1 - p ** q) / q`` with ``p = y_pred[label]``, the predicted probability of the true
    class; ``q -> 0`` approaches cross-entropy and ``q = 1`` is the mean absolute error.

    Args:
      y_true: integer labels ``[batch]`` (or ``[batch, 1]``).
      y_pred: probabilities ``[batch, num_classes]``.
      q: in ``(0, 1)``.

    Returns:
      Per-sample loss, ``[batch]``.

    Raises:
      TypeError: non-integer labels.
      ValueError: ``q`` outside ``(0, 1)``; labels whose shape does not match.

    Notes:
      Below ``p = 1e-7`` the power is replaced by its chord (``p * 1e-7 ** (q - 1)``), so the value
      at ``p = 0`` is exactly ``1 / q`` and its gradient is finite. An out-of-range label gives
      ``NaN`` for its sample.

      Bad values: Only the entry of the sample's label is read: NaN there makes that sample's loss
      NaN; the other samples are exact. A label outside ``[0, C)`` makes that sample's loss NaN; the
      other samples are exact. Probabilities are used as given (not renormalised).

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_pred = [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]
      >>> print(np.asarray(jaxloss.categorical_generalized_cross_entropy([0, 1, 0, 1], y_pred)
      ...       ).round(4))
      [0.3267 0.2111 0.4508 0.4508]
    """
    name = "categorical_generalized_cross_entropy"
    q = c.check_option(name, "q", q, c.OPEN_UNIT_INTERVAL)
    y_true, y_pred, axis = prob.sparse_prepare(name, y_true, y_pred, -1)
    num_classes = y_pred.shape[axis]
    in_range = (y_true >= 0) & (y_true < num_classes)
    safe = jnp.where(in_range, y_true, 0)
    p = jnp.squeeze(jnp.take_along_axis(y_pred, jnp.expand_dims(safe, axis), axis=axis), axis)
    big = p > prob.EPSILON
    p_q = jnp.where(big, jnp.power(jnp.where(big, p, 1.0), q), p * prob.EPSILON ** (q - 1.0))
    loss = (1.0 - p_q) / q
    return jnp.where(in_range, loss, jnp.asarray(jnp.nan, loss.dtype))


class CategoricalGeneralizedCrossEntropy(
    Loss, function=categorical_generalized_cross_entropy, inputs="sparse_categorical"
):
    """Class handle of :func:`categorical_generalized_cross_entropy`.

    Args:
      q: in the open interval ``(0, 1)`` (default 0.5).

    Examples:
      >>> import jaxloss
      >>> y_pred = [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]
      >>> loss = jaxloss.CategoricalGeneralizedCrossEntropy()
      >>> print(f"{float(loss([0, 1, 0, 1], y_pred)):.4f}")
      0.3599
    """

    q: float = option(default=0.5, check=c.OPEN_UNIT_INTERVAL)


# Keras 1/2 spelling still found in user code.
bce = binary_crossentropy
