"""Probabilistic losses: binary, categorical and sparse cross-entropy (plain and focal), Poisson,
KL divergence, generalized cross-entropy and Circle loss.

Every function takes ``(y_true, y_pred)`` in Keras order and returns the unreduced per-sample loss;
every class is the frozen-dataclass handle of its function. Semantics are Keras 3's:

* ``from_logits=True`` goes through the kernels of :mod:`jaxloss.ops` (hand-written gradients,
  float32 math for bfloat16/float16 inputs, exact log-sigmoid / log-softmax). It uses their
  forward-mode-capable twins (``*_jvp``): the same fused backward pass and the same single ``lse``
  residual in reverse mode (measured equal in time and memory, see ``benchmarks/``), and, as with
  Keras and optax, ``jax.jvp``, ``jax.jacfwd`` and ``jax.hessian`` work through every class;
* ``from_logits=False`` treats ``y_pred`` as probabilities and clips them to ``[1e-7, 1 - 1e-7]``
  (Keras' ``backend.epsilon()``) before the log, as Keras does, so probabilities of exactly 0 and 1
  give finite losses and finite gradients; categorical probabilities are first renormalised to sum
  to 1 along ``axis``.

Integer labels (``sparse_categorical_crossentropy``, ``categorical_generalized_cross_entropy``,
``circle``) must have an integer dtype (``TypeError`` otherwise). A label outside
``[0, num_classes)`` that is not ``ignore_class`` gives a ``NaN`` loss for its own element only
(Keras silently gives 0); see :func:`jaxloss.ops.sparse_softmax_cross_entropy`.

Deliberate departures from Keras 3.15, all for extreme or degenerate inputs:

* focal losses with ``from_logits=True`` use the exact log-sigmoid/log-softmax instead of the
  clipped probability, so for logits beyond about +-16 the loss keeps growing (Keras saturates at
  ``-log(1e-7)``);
* ``label_smoothing`` in the categorical losses counts the classes along ``axis`` (Keras counts the
  last axis even when ``axis`` is another one), and a per-class ``alpha`` lines up with ``axis``;
* an all-zero probability vector gives a finite loss (Keras divides 0 by 0);
* ``categorical_generalized_cross_entropy`` is linear in ``p`` below ``p = 1e-7`` (value within
  ``1e-7 ** q`` of Keras'), so the gradient at ``p = 0`` is finite instead of infinite.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxloss import _validation as v
from jaxloss._loss import Loss, _cast_floating
from jaxloss._reduction import reduce_weighted_values
from jaxloss._registry import register
from jaxloss.ops import cross_entropy as _ce

# Keras' backend.epsilon().
EPSILON = 1e-7

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "Circle",
    "KLDivergence",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "circle",
    "kl_divergence",
    "poisson",
    "sparse_categorical_crossentropy",
    "KLD",
    "bce",
    "kld",
    "kullback_leibler_divergence",
]


# ----------------------------------------------------------------------------------------------
# option checks (shared by functions and classes)


def _check_smoothing(owner: Any, label_smoothing: Any) -> float:
    ok = isinstance(label_smoothing, (int, float, np.floating)) and not isinstance(
        label_smoothing, bool
    )
    v.check_option(
        owner,
        "label_smoothing",
        ok and 0.0 <= label_smoothing <= 1.0,
        "a float in [0, 1]",
        label_smoothing,
    )
    return float(label_smoothing)


def _check_bool(owner: Any, option: str, value: Any) -> None:
    v.check_option(owner, option, isinstance(value, (bool, np.bool_)), "a bool", value)


def _check_nonneg(owner: Any, option: str, value: Any) -> None:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    v.check_option(owner, option, ok and value >= 0, "a float >= 0", value)


def _as_tuple(value: Any) -> Any:
    """Lists/arrays of per-class values become tuples of floats (hashable dataclass fields)."""
    if value is None or isinstance(value, (int, float, np.floating, np.integer)):
        return value
    return tuple(float(x) for x in np.asarray(value, np.float64).reshape(-1))


def _check_class_weight(owner: Any, class_weight: Any) -> None:
    if class_weight is None:
        return
    arr = np.asarray(class_weight, dtype=np.float64)
    v.check_option(
        owner,
        "class_weight",
        arr.ndim == 1 and arr.size > 0 and np.all(arr >= 0),
        "None or a 1-D sequence of non-negative weights, one per class",
        class_weight,
    )


def _class_axis_shape(axis: int, ndim: int) -> tuple[int, ...]:
    return tuple(-1 if d == axis else 1 for d in range(ndim))


# ----------------------------------------------------------------------------------------------
# binary


def _bce_elementwise(y_true, y_pred, from_logits, label_smoothing, pos_weight):
    """Elementwise binary cross-entropy (smoothing applied), in y_pred's dtype or float32."""
    if from_logits:
        return _ce.sigmoid_binary_cross_entropy_jvp(
            y_pred, y_true, pos_weight=pos_weight, label_smoothing=label_smoothing
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
    pos = y_true * jnp.log(p)
    if pos_weight is not None:
        pos = jnp.asarray(pos_weight, p.dtype) * pos
    return -(pos + (1.0 - y_true) * jnp.log1p(-p))


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

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
      >>> loss.shape
      (2,)
      >>> print(np.asarray(loss).round(3))
      [0.916 0.714]
    """
    ls = _check_smoothing("binary_crossentropy", label_smoothing)
    y_true, y_pred = v.match_shapes("binary_crossentropy", y_true, y_pred)
    y_true = jnp.broadcast_to(y_true, y_pred.shape)
    axis = v.normalize_axis("binary_crossentropy", "y_pred", axis, max(y_pred.ndim, 1))
    elementwise = _bce_elementwise(y_true, y_pred, from_logits, ls, pos_weight)
    return jnp.mean(elementwise, axis=axis)


def binary_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> jax.Array:
    """Binary focal cross-entropy (Lin et al., 2018), averaged over ``axis``.

    ``loss = mean(w * (1 - p_t) ** gamma * bce, axis)`` where ``p_t = y p + (1 - y)(1 - p)``,
    ``bce`` is the binary cross-entropy of the (smoothed) targets, and ``w = y alpha + (1 - y)(1 -
    alpha)`` when ``apply_class_balancing`` (else 1).

    Args:
      y_true: targets in ``[0, 1]``, shape ``[batch, d0, .. dN]``.
      y_pred: probabilities, or logits with ``from_logits=True``; same shape.
      apply_class_balancing: weight class 1 by ``alpha`` and class 0 by ``1 - alpha``.
      alpha: balancing factor in ``[0, 1]``.
      gamma: focusing parameter ``>= 0`` (0 gives the binary cross-entropy).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the axis the mean is taken over.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match; an option out of range.

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_true, y_pred = [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]
      >>> print(np.asarray(jaxloss.binary_focal_crossentropy(y_true, y_pred, gamma=2)).round(3))
      [0.33  0.206]
      >>> print(np.asarray(jaxloss.binary_focal_crossentropy(y_true, y_pred, gamma=0)).round(3))
      [0.916 0.714]
      >>> focal = jaxloss.binary_focal_crossentropy(y_true, y_pred, gamma=2)
      >>> ratio = focal / jaxloss.binary_crossentropy(y_true, y_pred)  # Keras' docs: [0.360, 0.289]
      >>> print(*(f"{r:.2f}" for r in ratio))
      0.36 0.29
    """
    name = "binary_focal_crossentropy"
    ls = _check_smoothing(name, label_smoothing)
    _check_nonneg(name, "gamma", gamma)
    v.check_option(name, "alpha", 0.0 <= alpha <= 1.0, "a float in [0, 1]", alpha)
    y_true, y_pred = v.match_shapes(name, y_true, y_pred)
    y_true = jnp.broadcast_to(y_true, y_pred.shape)
    axis = v.normalize_axis(name, "y_pred", axis, max(y_pred.ndim, 1))
    bce = _bce_elementwise(y_true, y_pred, from_logits, ls, None)
    if ls:
        y_true = y_true * (1.0 - ls) + 0.5 * ls
    p = jax.nn.sigmoid(y_pred.astype(bce.dtype)) if from_logits else y_pred
    p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
    focal = jnp.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return jnp.mean(focal, axis=axis)


# ----------------------------------------------------------------------------------------------
# categorical


def _renormalized_log_probs(y_pred: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """Keras' probability path: renormalise along ``axis``, clip to [eps, 1 - eps]; (p, log p)."""
    total = jnp.sum(y_pred, axis=axis, keepdims=True)
    safe = jnp.where(total == 0, jnp.ones_like(total), total)
    p = jnp.clip(y_pred / safe, EPSILON, 1.0 - EPSILON)
    return p, jnp.log(p)


def _warn_single_class(name: str, y_pred: jax.Array) -> None:
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )


def _categorical_prepare(name, y_true, y_pred, axis):
    if isinstance(axis, bool):
        raise TypeError(f"{name}: `axis` must be an int; got {axis!r}.")
    y_pred = v.as_float(y_pred)
    y_true = jnp.asarray(y_true).astype(y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: `y_true` and `y_pred` must have the same shape; got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}."
        )
    v.check_rank(name, "y_pred", y_pred, 1)
    axis = v.normalize_axis(name, "y_pred", axis, y_pred.ndim)
    _warn_single_class(name, y_pred)
    return y_true, y_pred, axis


def _sample_class_weight(class_weight, y_true, axis):
    """Per-sample weight ``sum(class_weight * y_true, axis)`` (the label's weight if one-hot)."""
    w = jnp.asarray(class_weight, y_true.dtype).reshape(_class_axis_shape(axis, y_true.ndim))
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
    ls = _check_smoothing(name, label_smoothing)
    _check_class_weight(name, class_weight)
    y_true, y_pred, axis = _categorical_prepare(name, y_true, y_pred, axis)
    if from_logits:
        loss = _ce.softmax_cross_entropy_jvp(y_pred, y_true, axis=axis, label_smoothing=ls)
    else:
        t = y_true * (1.0 - ls) + ls / y_pred.shape[axis] if ls else y_true
        _, log_p = _renormalized_log_probs(y_pred, axis)
        loss = -jnp.sum(t * log_p, axis=axis)
    if class_weight is not None:
        loss = loss * _sample_class_weight(class_weight, y_true, axis).astype(loss.dtype)
    return loss


def categorical_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    alpha: float | Any = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> jax.Array:
    """Alpha-balanced categorical focal cross-entropy (Lin et al., 2018) along ``axis``.

    ``loss = sum(alpha * (1 - p) ** gamma * (-t log p), axis)`` with ``p`` the renormalised,
    clipped probabilities (or the softmax of logits, with its exact log) and ``t`` the smoothed
    targets.

    Args:
      y_true: one-hot or soft targets, the shape of ``y_pred``.
      y_pred: probabilities, or logits with ``from_logits=True``.
      alpha: a scalar, or one weight per class (lined up with ``axis``).
      gamma: focusing parameter ``>= 0``.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the class axis.

    Returns:
      Per-sample loss, the shape of ``y_pred`` without ``axis``.

    Raises:
      ValueError: different shapes; an option out of range; a per-class ``alpha`` of the wrong
        length.

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.categorical_focal_crossentropy(
      ...     [[0, 1, 0], [0, 0, 1]], [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
      >>> print(np.asarray(loss).round(6))
      [0.000263 0.675912]
    """
    name = "categorical_focal_crossentropy"
    ls = _check_smoothing(name, label_smoothing)
    _check_nonneg(name, "gamma", gamma)
    y_true, y_pred, axis = _categorical_prepare(name, y_true, y_pred, axis)
    num_classes = y_pred.shape[axis]
    t = y_true * (1.0 - ls) + ls / num_classes if ls else y_true
    if from_logits:
        x = y_pred.astype(_ce.compute_dtype(y_pred.dtype))
        log_p = x - _ce.logsumexp(x, axis)
        p = jnp.exp(log_p)
    else:
        p, log_p = _renormalized_log_probs(y_pred, axis)
    alpha_arr = jnp.asarray(alpha, p.dtype)
    if alpha_arr.ndim:
        if alpha_arr.shape != (num_classes,):
            raise ValueError(
                f"{name}: `alpha` must be a scalar or have one value per class "
                f"({num_classes}); got shape {alpha_arr.shape}."
            )
        alpha_arr = alpha_arr.reshape(_class_axis_shape(axis, p.ndim))
    focal = alpha_arr * jnp.power(1.0 - p, gamma) * (-t * log_p)
    return jnp.sum(focal, axis=axis)


# ----------------------------------------------------------------------------------------------
# sparse categorical


def _squeeze_sparse_labels(y_true: jax.Array, y_pred: jax.Array, axis: int) -> jax.Array:
    """Keras: labels of the logits' rank with a size-1 class axis are squeezed."""
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        return jnp.squeeze(y_true, axis)
    return y_true


def _sparse_prepare(name, y_true, y_pred, axis):
    y_pred = v.as_float(y_pred)
    y_true = jnp.asarray(y_true)
    v.check_integer(name, "y_true", y_true)
    v.check_rank(name, "y_pred", y_pred, 1)
    axis = v.normalize_axis(name, "y_pred", axis, y_pred.ndim)
    y_true = _squeeze_sparse_labels(y_true, y_pred, axis)
    expected = y_pred.shape[:axis] + y_pred.shape[axis + 1 :]
    if y_true.shape != expected:
        raise ValueError(
            f"{name}: `y_true` must have the shape of `y_pred` without the class axis "
            f"({expected}, or that shape with a 1 on the class axis); got {tuple(y_true.shape)} "
            f"for y_pred {tuple(y_pred.shape)}."
        )
    return y_true.astype(jnp.int64 if y_true.dtype.itemsize == 8 else jnp.int32), y_pred, axis


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

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.sparse_categorical_crossentropy([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
      >>> loss.shape
      (2,)
      >>> print(np.asarray(loss).round(4))
      [0.0513 2.3026]
    """
    name = "sparse_categorical_crossentropy"
    ls = _check_smoothing(name, label_smoothing)
    _check_class_weight(name, class_weight)
    if ignore_class is not None and not isinstance(ignore_class, (int, np.integer)):
        raise TypeError(f"{name}: `ignore_class` must be None or an int; got {ignore_class!r}.")
    y_true, y_pred, axis = _sparse_prepare(name, y_true, y_pred, axis)
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
    _, log_p = _renormalized_log_probs(y_pred, axis)
    picked = jnp.squeeze(jnp.take_along_axis(log_p, jnp.expand_dims(safe, axis), axis=axis), axis)
    loss = -picked if not ls else -(1.0 - ls) * picked - ls * jnp.mean(log_p, axis=axis)
    if cw is not None:
        loss = loss * cw.astype(loss.dtype)[safe]
    loss = jnp.where(in_range, loss, jnp.asarray(jnp.nan, loss.dtype))
    if ignore_class is not None:
        loss = jnp.where(y_true == ignore_class, jnp.zeros((), loss.dtype), loss)
    return loss


# ----------------------------------------------------------------------------------------------
# Poisson, KL divergence, generalized cross-entropy


def poisson(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Poisson negative log-likelihood (without the ``log(y_true!)`` constant), last-axis mean.

    ``loss = mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``

    Args:
      y_true: observed counts, shape ``[batch, d0, .. dN]``.
      y_pred: predicted rates (>= 0), same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.poisson([[1., 0.], [2., 2.]], [[1., 1.], [2., 1.]])).round(4))
      [1.     0.8069]

    Notes:
      A negative rate gives ``NaN`` (as in Keras); a rate of 0 is finite thanks to the 1e-7.
    """
    y_true, y_pred = v.match_shapes("poisson", y_true, y_pred)
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1)


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Kullback-Leibler divergence ``KL(y_true || y_pred)`` over the last axis.

    ``loss = sum(t * log(t / p), axis=-1)`` with ``t, p`` clipped to ``[1e-7, 1]``.

    Args:
      y_true: target distributions, shape ``[batch, d0, .. dN]``.
      y_pred: predicted distributions, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.kl_divergence([[0., 1.], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]])
      ...       ).round(4))
      [0.5108 0.    ]
    """
    y_true, y_pred = v.match_shapes("kl_divergence", y_true, y_pred)
    t = jnp.clip(y_true, EPSILON, 1.0)
    p = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(t * jnp.log(t / p), axis=-1)


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

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_pred = [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]
      >>> print(np.asarray(jaxloss.categorical_generalized_cross_entropy([0, 1, 0, 1], y_pred)
      ...       ).round(4))
      [0.3267 0.2111 0.4508 0.4508]
    """
    name = "categorical_generalized_cross_entropy"
    ok = isinstance(q, (int, float, np.floating)) and not isinstance(q, bool)
    v.check_option(name, "q", ok and 0.0 < q < 1.0, "a float in the open interval (0, 1)", q)
    y_true, y_pred, axis = _sparse_prepare(name, y_true, y_pred, -1)
    num_classes = y_pred.shape[axis]
    in_range = (y_true >= 0) & (y_true < num_classes)
    safe = jnp.where(in_range, y_true, 0)
    p = jnp.squeeze(jnp.take_along_axis(y_pred, jnp.expand_dims(safe, axis), axis=axis), axis)
    big = p > EPSILON
    p_q = jnp.where(big, jnp.power(jnp.where(big, p, 1.0), q), p * EPSILON ** (q - 1.0))
    loss = (1.0 - p_q) / q
    return jnp.where(in_range, loss, jnp.asarray(jnp.nan, loss.dtype))


# ----------------------------------------------------------------------------------------------
# Circle loss


def _masked_logsumexp(x: jax.Array, mask: jax.Array, axis: int) -> jax.Array:
    """logsumexp over the ``mask``-ed entries; ``-inf`` (with a zero gradient) where none are."""
    neg_inf = jnp.asarray(-jnp.inf, x.dtype)
    m = jnp.max(jnp.where(mask, x, neg_inf), axis=axis, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    e = jnp.where(mask, jnp.exp(jnp.where(mask, x - m, 0.0)), 0.0)
    s = jnp.sum(e, axis=axis, keepdims=True)
    ok = s > 0
    out = jnp.where(ok, m + jnp.log(jnp.where(ok, s, 1.0)), neg_inf)
    return jnp.squeeze(out, axis)


def circle(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    gamma: float = 80.0,
    margin: float = 0.4,
) -> jax.Array:
    """Circle loss (Sun et al., 2020) between integer labels and L2-normalised embeddings.

    With cosine distances ``d = max(1 - y_pred @ ref_embeddings.T, 0)``, positive pairs (same label,
    the diagonal excluded when ``remove_diagonal``) and negative pairs::

        p_loss = logsumexp(-gamma * max(margin + d, 0) * (margin - d))      over positives
        n_loss = logsumexp(gamma * max(1 + margin - d, 0) * (1 - margin - d)) over negatives
        loss   = softplus(p_loss + n_loss)

    Args:
      y_true: integer labels ``[batch]``.
      y_pred: L2-normalised embeddings ``[batch, dim]``.
      ref_labels: labels of the reference embeddings (default ``y_true``).
      ref_embeddings: L2-normalised reference embeddings ``[ref, dim]`` (default ``y_pred``).
      remove_diagonal: drop self-similarities from the positive pairs.
      gamma: scale of the similarity scores (> 0).
      margin: relaxation margin.

    Returns:
      Per-sample loss ``[batch]``; 0 for a sample without positive or negative pairs (the class
      handle masks those out of the mean, as Keras does).

    Raises:
      TypeError: non-integer labels.
      ValueError: shapes that do not line up.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(np.asarray(jaxloss.circle(jnp.array([0, 0, 1, 1]), emb, gamma=2.0)).round(4))
      [0.8577 1.0097 1.0097 0.8577]
    """
    name = "circle"
    y_pred = v.as_float(y_pred)
    y_true = jnp.asarray(y_true)
    v.check_integer(name, "y_true", y_true)
    if y_true.ndim == 2 and y_true.shape[-1] == 1:
        y_true = y_true[:, 0]
    if y_pred.ndim != 2 or y_true.shape != y_pred.shape[:1]:
        raise ValueError(
            f"{name}: expected `y_true` [batch] and `y_pred` [batch, dim]; got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}."
        )
    ref_emb = y_pred if ref_embeddings is None else v.as_float(ref_embeddings).astype(y_pred.dtype)
    ref_lab = y_true if ref_labels is None else jnp.asarray(ref_labels)
    v.check_integer(name, "ref_labels", ref_lab)
    ref_lab = ref_lab.reshape(-1)
    if ref_emb.ndim != 2 or ref_emb.shape != (ref_lab.shape[0], y_pred.shape[1]):
        raise ValueError(
            f"{name}: `ref_embeddings` must be [ref, {y_pred.shape[1]}] with one `ref_labels` "
            f"entry per row; got {tuple(ref_emb.shape)} and {tuple(ref_lab.shape)}."
        )
    dist = jnp.maximum(1.0 - y_pred @ ref_emb.T, 0.0)
    positive = y_true[:, None] == ref_lab[None, :]
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~jnp.eye(y_true.shape[0], ref_lab.shape[0], dtype=bool)
    pos_w = jnp.maximum((margin + dist) * positive, 0.0)
    neg_w = jnp.maximum((1.0 + margin - dist) * negative, 0.0)
    p_loss = _masked_logsumexp(-gamma * pos_w * (margin - dist), positive, 1)
    n_loss = _masked_logsumexp(gamma * neg_w * (1.0 - margin - dist), negative, 1)
    return jax.nn.softplus(p_loss + n_loss)


# ----------------------------------------------------------------------------------------------
# classes


def _check_common(
    loss: Any, *, from_logits: Any = False, label_smoothing: Any = 0.0, axis: Any = -1
) -> None:
    _check_bool(loss, "from_logits", from_logits)
    _check_smoothing(loss, label_smoothing)
    v.check_option(
        loss,
        "axis",
        isinstance(axis, (int, np.integer)) and not isinstance(axis, bool),
        "an int",
        axis,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class BinaryCrossentropy(Loss):
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

    from_logits: bool = False
    label_smoothing: float = 0.0
    axis: int = -1
    pos_weight: float | tuple[float, ...] | None = None
    default_name: ClassVar[str] = "binary_crossentropy"
    function: ClassVar = staticmethod(binary_crossentropy)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_common(
            self, from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis
        )
        object.__setattr__(self, "pos_weight", _as_tuple(self.pos_weight))
        if self.pos_weight is not None:
            arr = np.asarray(self.pos_weight, np.float64)
            v.check_option(
                self,
                "pos_weight",
                arr.size > 0 and bool(np.all(arr >= 0)),
                "None, a float >= 0 or a sequence of them (one per class)",
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class BinaryFocalCrossentropy(Loss):
    """Class handle of :func:`binary_focal_crossentropy`.

    Args:
      apply_class_balancing: weight class 1 by ``alpha`` and class 0 by ``1 - alpha``.
      alpha: in ``[0, 1]`` (default 0.25).
      gamma: ``>= 0`` (default 2.0).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the axis the mean is taken over.

    Examples:
      >>> import jaxloss
      >>> y_true, y_pred = [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]
      >>> loss = jaxloss.BinaryFocalCrossentropy(gamma=2, from_logits=True)
      >>> print(f"{float(loss(y_true, y_pred)):.3f}")
      0.691
      >>> loss = jaxloss.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=2,
      ...                                        from_logits=True)
      >>> print(f"{float(loss(y_true, y_pred)):.2f}")
      0.51
      >>> y_true, y_pred = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
      >>> loss = jaxloss.BinaryFocalCrossentropy(gamma=3, from_logits=True)
      >>> print(f"{float(loss(y_true, y_pred)):.3f}")
      0.647
      >>> print(f"{float(loss(y_true, y_pred, sample_weight=[0.8, 0.2])):.3f}")
      0.133
      >>> loss = jaxloss.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=3,
      ...                                        from_logits=True)
      >>> print(f"{float(loss(y_true, y_pred)):.3f}")
      0.482
      >>> print(f"{float(loss(y_true, y_pred, sample_weight=[0.8, 0.2])):.3f}")
      0.097
      >>> loss = jaxloss.BinaryFocalCrossentropy(gamma=4, from_logits=True, reduction="sum")
      >>> print(f"{float(loss(y_true, y_pred)):.3f}")
      1.222
      >>> loss = jaxloss.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=4,
      ...                                        from_logits=True, reduction="sum")
      >>> print(f"{float(loss(y_true, y_pred)):.3f}")
      0.914
      >>> loss = jaxloss.BinaryFocalCrossentropy(gamma=5, from_logits=True, reduction=None)
      >>> print(*(f"{x:.4f}" for x in loss(y_true, y_pred)))
      0.0017 1.1561
      >>> loss = jaxloss.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=5,
      ...                                        from_logits=True, reduction=None)
      >>> print(*(f"{x:.4f}" for x in loss(y_true, y_pred)))
      0.0004 0.8671
    """

    apply_class_balancing: bool = False
    alpha: float = 0.25
    gamma: float = 2.0
    from_logits: bool = False
    label_smoothing: float = 0.0
    axis: int = -1
    default_name: ClassVar[str] = "binary_focal_crossentropy"
    function: ClassVar = staticmethod(binary_focal_crossentropy)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_common(
            self, from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis
        )
        _check_bool(self, "apply_class_balancing", self.apply_class_balancing)
        ok = isinstance(self.alpha, (int, float, np.floating)) and not isinstance(self.alpha, bool)
        v.check_option(self, "alpha", ok and 0.0 <= self.alpha <= 1.0, "a float in [0, 1]")
        _check_nonneg(self, "gamma", self.gamma)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CategoricalCrossentropy(Loss):
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

    from_logits: bool = False
    label_smoothing: float = 0.0
    axis: int = -1
    class_weight: tuple[float, ...] | None = None
    default_name: ClassVar[str] = "categorical_crossentropy"
    function: ClassVar = staticmethod(categorical_crossentropy)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_common(
            self, from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis
        )
        _check_class_weight(self, self.class_weight)
        object.__setattr__(self, "class_weight", _as_tuple(self.class_weight))


@dataclasses.dataclass(frozen=True, kw_only=True)
class CategoricalFocalCrossentropy(Loss):
    """Class handle of :func:`categorical_focal_crossentropy`.

    Args:
      alpha: a float, or one float per class (default 0.25).
      gamma: ``>= 0`` (default 2.0).
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: in ``[0, 1]``.
      axis: the class axis.

    Examples:
      >>> import numpy as np, jaxloss
      >>> y_true = [[0., 1., 0.], [0., 0., 1.]]
      >>> y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
      >>> cce = jaxloss.CategoricalFocalCrossentropy()
      >>> print(f"{float(cce(y_true, y_pred)):.5f}")
      0.23315
      >>> print(f"{float(cce(y_true, y_pred, sample_weight=np.array([0.3, 0.7]))):.4f}")
      0.1632
      >>> cce = jaxloss.CategoricalFocalCrossentropy(reduction="sum")
      >>> print(f"{float(cce(y_true, y_pred)):.5f}")
      0.46631
      >>> cce = jaxloss.CategoricalFocalCrossentropy(reduction=None)
      >>> print(np.asarray(cce(y_true, y_pred)))
      [3.2058331e-05 4.6627346e-01]
    """

    alpha: float | tuple[float, ...] = 0.25
    gamma: float = 2.0
    from_logits: bool = False
    label_smoothing: float = 0.0
    axis: int = -1
    default_name: ClassVar[str] = "categorical_focal_crossentropy"
    function: ClassVar = staticmethod(categorical_focal_crossentropy)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_common(
            self, from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis
        )
        _check_nonneg(self, "gamma", self.gamma)
        object.__setattr__(self, "alpha", _as_tuple(self.alpha))
        arr = np.asarray(self.alpha, np.float64)
        v.check_option(
            self,
            "alpha",
            arr.ndim <= 1 and arr.size > 0 and bool(np.all(arr >= 0)),
            "a float >= 0 or a sequence of them (one per class)",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SparseCategoricalCrossentropy(Loss):
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

    from_logits: bool = False
    ignore_class: int | None = None
    axis: int = -1
    label_smoothing: float = 0.0
    class_weight: tuple[float, ...] | None = None
    default_name: ClassVar[str] = "sparse_categorical_crossentropy"
    function: ClassVar = staticmethod(sparse_categorical_crossentropy)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_common(
            self, from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis
        )
        ok = self.ignore_class is None or (
            isinstance(self.ignore_class, (int, np.integer))
            and not isinstance(self.ignore_class, bool)
        )
        v.check_option(self, "ignore_class", ok, "None or an int")
        if self.ignore_class is not None:
            object.__setattr__(self, "ignore_class", int(self.ignore_class))
        _check_class_weight(self, self.class_weight)
        object.__setattr__(self, "class_weight", _as_tuple(self.class_weight))

    def mask(self, y_true: jax.Array, y_pred: jax.Array) -> jax.Array | None:
        if self.ignore_class is None:
            return None
        y_pred = jnp.asarray(y_pred)
        axis = v.normalize_axis(self, "y_pred", self.axis, y_pred.ndim)
        return _squeeze_sparse_labels(jnp.asarray(y_true), y_pred, axis) != self.ignore_class


@dataclasses.dataclass(frozen=True, kw_only=True)
class Poisson(Loss):
    """Class handle of :func:`poisson`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.Poisson()([[1., 0.], [2., 2.]], [[1., 1.], [2., 1.]])):.4f}")
      0.9034
    """

    default_name: ClassVar[str] = "poisson"
    function: ClassVar = staticmethod(poisson)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KLDivergence(Loss):
    """Class handle of :func:`kl_divergence`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.KLDivergence()
      >>> print(f"{float(loss([[0., 1.], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]])):.4f}")
      0.2554
    """

    default_name: ClassVar[str] = "kl_divergence"
    function: ClassVar = staticmethod(kl_divergence)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CategoricalGeneralizedCrossEntropy(Loss):
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

    q: float = 0.5
    default_name: ClassVar[str] = "categorical_generalized_cross_entropy"
    function: ClassVar = staticmethod(categorical_generalized_cross_entropy)

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = isinstance(self.q, (int, float, np.floating)) and not isinstance(self.q, bool)
        v.check_option(self, "q", ok and 0.0 < self.q < 1.0, "a float in the open interval (0, 1)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Circle(Loss):
    """Class handle of :func:`circle`.

    As in Keras, samples whose loss is 0 (no positive or no negative pair) are masked out of the
    mean reductions. Reference embeddings can be passed at call time:
    ``loss(y_true, y_pred, ref_labels=..., ref_embeddings=...)``.

    Args:
      gamma: scale of the similarity scores, > 0 (default 80).
      margin: relaxation margin (default 0.4).
      remove_diagonal: drop self-similarities from the positive pairs (default True).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> loss = jaxloss.Circle(gamma=2.0)
      >>> print(f"{float(loss(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      0.9337
    """

    gamma: float = 80.0
    margin: float = 0.4
    remove_diagonal: bool = True
    default_name: ClassVar[str] = "circle"

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = isinstance(self.gamma, (int, float, np.floating)) and not isinstance(self.gamma, bool)
        v.check_option(self, "gamma", ok and self.gamma > 0, "a float > 0")
        ok = isinstance(self.margin, (int, float, np.floating)) and not isinstance(
            self.margin, bool
        )
        v.check_option(self, "margin", ok, "a float")
        _check_bool(self, "remove_diagonal", self.remove_diagonal)

    def call(
        self,
        y_true: jax.Array,
        y_pred: jax.Array,
        ref_labels: Any = None,
        ref_embeddings: Any = None,
    ) -> jax.Array:
        return circle(
            y_true,
            y_pred,
            ref_labels=ref_labels,
            ref_embeddings=ref_embeddings,
            remove_diagonal=self.remove_diagonal,
            gamma=self.gamma,
            margin=self.margin,
        )

    def __call__(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        ref_labels: ArrayLike | None = None,
        ref_embeddings: ArrayLike | None = None,
    ) -> jax.Array:
        dtype = self.compute_dtype
        y_pred = _cast_floating(y_pred, dtype)
        if ref_embeddings is not None:
            ref_embeddings = _cast_floating(ref_embeddings, dtype)
        values = self.call(jnp.asarray(y_true), y_pred, ref_labels, ref_embeddings)
        values = values.astype(dtype)
        return reduce_weighted_values(
            values,
            sample_weight=sample_weight,
            mask=values > 0,
            reduction=self.reduction,
            axis_name=self.axis_name,
            loss_name=type(self).__name__,
        )


# Keras 1/2 spellings still found in user code.
bce = binary_crossentropy
kld = KLD = kullback_leibler_divergence = kl_divergence

register(binary_crossentropy, BinaryCrossentropy, aliases=("bce",), inputs="binary")
register(binary_focal_crossentropy, BinaryFocalCrossentropy, inputs="binary")
register(categorical_crossentropy, CategoricalCrossentropy, inputs="categorical")
register(categorical_focal_crossentropy, CategoricalFocalCrossentropy, inputs="categorical")
register(
    sparse_categorical_crossentropy, SparseCategoricalCrossentropy, inputs="sparse_categorical"
)
register(poisson, Poisson, inputs="binary")
register(
    kl_divergence,
    KLDivergence,
    aliases=("kld", "kullback_leibler_divergence"),
    inputs="categorical",
)
register(
    categorical_generalized_cross_entropy,
    CategoricalGeneralizedCrossEntropy,
    inputs="sparse_categorical",
)
register(circle, Circle, inputs="metric_learning")
