"""The probability-space conventions shared by the cross-entropy and focal families.

Keras' rules for ``from_logits=False``: probabilities are clipped to ``[1e-7, 1 - 1e-7]``
(``backend.epsilon()``) before the log, and categorical probabilities are renormalised to sum to 1
along the class axis first. Also the trace-time checks of categorical (same-shape) and sparse
(integer label) inputs.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxloss import _checks as c
from jaxloss.ops import sigmoid_binary_cross_entropy_jvp

# Keras' backend.epsilon().
EPSILON = 1e-7


def class_axis_shape(axis: int, ndim: int) -> tuple[int, ...]:
    return tuple(-1 if d == axis else 1 for d in range(ndim))


def bce_elementwise(y_true, y_pred, from_logits, label_smoothing, pos_weight):
    """Elementwise binary cross-entropy (smoothing applied), in y_pred's dtype or float32."""
    if from_logits:
        return sigmoid_binary_cross_entropy_jvp(
            y_pred, y_true, pos_weight=pos_weight, label_smoothing=label_smoothing
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
    pos = y_true * jnp.log(p)
    if pos_weight is not None:
        pos = jnp.asarray(pos_weight, p.dtype) * pos
    return -(pos + (1.0 - y_true) * jnp.log1p(-p))


def renormalized_log_probs(y_pred: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """Keras' probability path: renormalise along ``axis``, clip to [eps, 1 - eps]; (p, log p)."""
    total = jnp.sum(y_pred, axis=axis, keepdims=True)
    safe = jnp.where(total == 0, jnp.ones_like(total), total)
    p = jnp.clip(y_pred / safe, EPSILON, 1.0 - EPSILON)
    return p, jnp.log(p)


def warn_single_class(name: str, y_pred: jax.Array) -> None:
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )


def categorical_prepare(name, y_true, y_pred, axis):
    if isinstance(axis, bool):
        raise TypeError(f"{name}: `axis` must be an int; got {axis!r}.")
    y_pred = c.as_float(y_pred, loss=name)
    y_true = c.as_input_array(name, "y_true", y_true).astype(y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: `y_true` and `y_pred` must have the same shape; got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}."
        )
    c.check_rank(name, "y_pred", y_pred, 1)
    axis = c.normalize_axis(name, "y_pred", axis, y_pred.ndim)
    c.check_classes(name, "y_pred", y_pred, axis)
    warn_single_class(name, y_pred)
    return y_true, y_pred, axis


def squeeze_sparse_labels(y_true: jax.Array, y_pred: jax.Array, axis: int) -> jax.Array:
    """Keras: labels of the logits' rank with a size-1 class axis are squeezed."""
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        return jnp.squeeze(y_true, axis)
    return y_true


def sparse_prepare(name, y_true, y_pred, axis):
    y_pred = c.as_float(y_pred, loss=name)
    y_true = c.as_input_array(name, "y_true", y_true)
    c.check_integer(name, "y_true", y_true)
    c.check_rank(name, "y_pred", y_pred, 1)
    axis = c.normalize_axis(name, "y_pred", axis, y_pred.ndim)
    c.check_classes(name, "y_pred", y_pred, axis)
    y_true = squeeze_sparse_labels(y_true, y_pred, axis)
    expected = y_pred.shape[:axis] + y_pred.shape[axis + 1 :]
    if y_true.shape != expected:
        raise ValueError(
            f"{name}: `y_true` must have the shape of `y_pred` without the class axis "
            f"({expected}, or that shape with a 1 on the class axis); got {tuple(y_true.shape)} "
            f"for y_pred {tuple(y_pred.shape)}."
        )
    return y_true.astype(jnp.int64 if y_true.dtype.itemsize == 8 else jnp.int32), y_pred, axis


def focal_modulation(base: jax.Array, gamma: Any) -> jax.Array:
    """``base ** gamma`` for ``base`` in [0, 1], with a finite (zero) gradient at ``base = 0``.

    For ``gamma < 1`` the power's derivative is infinite at 0, and autodiff would multiply it by
    the vanishing cross-entropy there (``inf * 0 = NaN``). The limit of the focal term's gradient
    at a perfectly classified element is 0 for every ``gamma > 0``, which the ``where`` gives.
    """
    if not isinstance(gamma, jax.Array) and gamma == 0:
        return jnp.ones_like(base)
    positive = base > 0
    powered = jnp.power(jnp.where(positive, base, jnp.ones_like(base)), gamma)
    at_zero = jnp.where(jnp.asarray(gamma) == 0, 1.0, 0.0).astype(base.dtype)
    return jnp.where(positive, powered, at_zero)


def xlogy_targets(t: jax.Array, log_p: jax.Array) -> jax.Array:
    """``-t * log_p`` with 0 (and a zero gradient) wherever ``t == 0``, even if ``log_p = -inf``."""
    has_mass = t != 0
    return jnp.where(has_mass, -t * jnp.where(has_mass, log_p, jnp.zeros_like(log_p)), 0.0)
