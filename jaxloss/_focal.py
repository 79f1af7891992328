"""Focal losses (Lin et al., 2018): cross-entropy down-weighted on well-classified examples, for
binary targets or class probabilities against probabilities (or logits with ``from_logits=True``).

Departure from Keras 3.15: with ``from_logits=True`` the exact log-sigmoid / log-softmax is used
instead of the clipped probability, so for logits beyond about +-16 the loss keeps growing (Keras
saturates at ``-log(1e-7)``); a per-class ``alpha`` lines up with ``axis``.

>>> import jaxloss
>>> print(f"{float(jaxloss.BinaryFocalCrossentropy(gamma=2.0)([[1.0]], [[0.9]])):.5f}")
0.00105
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss import _probability as prob
from jaxloss._loss import Loss, option


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

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Probabilities (``from_logits=False``) outside ``[0, 1]`` are not an error: the
      cross-entropy factor clips them to ``[1e-7, 1 - 1e-7]`` and the modulating factor ``(1 - p_t)
      ** gamma`` uses them as given (a negative ``1 - p_t`` counts as 0), as Keras computes it.
      Targets outside ``[0, 1]`` are used as given.

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
    apply_class_balancing = c.check_option(
        name, "apply_class_balancing", apply_class_balancing, c.BOOL
    )
    alpha = c.check_option(name, "alpha", alpha, c.UNIT_INTERVAL)
    gamma = c.check_option(name, "gamma", gamma, c.NON_NEGATIVE)
    from_logits = c.check_option(name, "from_logits", from_logits, c.BOOL)
    ls = c.check_option(name, "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    axis = c.check_option(name, "axis", axis, c.AXIS)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    y_true = jnp.broadcast_to(y_true, y_pred.shape)
    axis = c.normalize_axis(name, "y_pred", axis, max(y_pred.ndim, 1))
    bce = prob.bce_elementwise(y_true, y_pred, from_logits, ls, None)
    if ls:
        y_true = y_true * (1.0 - ls) + 0.5 * ls
    if from_logits:
        # 1 - p_t from the logits directly: 1 - sigmoid(x) would round to 0 beyond x ~ 17.
        x = y_pred.astype(bce.dtype)
        miss = y_true * jax.nn.sigmoid(-x) + (1.0 - y_true) * jax.nn.sigmoid(x)
    else:
        miss = y_true * (1.0 - y_pred) + (1.0 - y_true) * y_pred
    focal = prob.focal_modulation(miss, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return jnp.mean(focal, axis=axis)


class BinaryFocalCrossentropy(Loss, function=binary_focal_crossentropy, inputs="binary"):
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

    apply_class_balancing: bool = option(default=False, check=c.BOOL)
    alpha: float = option(default=0.25, check=c.UNIT_INTERVAL)
    gamma: float = option(default=2.0, check=c.NON_NEGATIVE)
    from_logits: bool = option(default=False, check=c.BOOL)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)
    axis: int = option(default=-1, check=c.AXIS)


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

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. The probabilities (``from_logits=False``) are renormalised to sum to 1 along the class
      axis and clipped to ``[1e-7, 1 - 1e-7]`` (Keras), so rows that do not sum to 1 are not an
      error; targets are not checked to be one-hot or to sum to 1 and weight the log-probabilities
      as given (a negative target can make the loss negative). With logits, ``-inf`` on a class
      whose target is 0 is exact.

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.categorical_focal_crossentropy(
      ...     [[0, 1, 0], [0, 0, 1]], [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
      >>> print(np.asarray(loss).round(6))
      [0.000263 0.675912]
    """
    name = "categorical_focal_crossentropy"
    alpha = c.check_option(name, "alpha", alpha, c.SCALAR_OR_PER_CLASS)
    gamma = c.check_option(name, "gamma", gamma, c.NON_NEGATIVE)
    from_logits = c.check_option(name, "from_logits", from_logits, c.BOOL)
    ls = c.check_option(name, "label_smoothing", label_smoothing, c.UNIT_INTERVAL)
    axis = c.check_option(name, "axis", axis, c.AXIS)
    y_true, y_pred, axis = prob.categorical_prepare(name, y_true, y_pred, axis)
    num_classes = y_pred.shape[axis]
    t = y_true * (1.0 - ls) + ls / num_classes if ls else y_true
    if from_logits:
        log_p = jax.nn.log_softmax(
            y_pred.astype(jnp.promote_types(y_pred.dtype, jnp.float32)), axis
        )
        p = jnp.exp(log_p)
    else:
        p, log_p = prob.renormalized_log_probs(y_pred, axis)
    alpha_arr = jnp.asarray(alpha, p.dtype)
    if alpha_arr.ndim:
        if alpha_arr.shape != (num_classes,):
            raise ValueError(
                f"{name}: `alpha` must be a scalar or have one value per class "
                f"({num_classes}); got shape {alpha_arr.shape}."
            )
        alpha_arr = alpha_arr.reshape(prob.class_axis_shape(axis, p.ndim))
    focal = alpha_arr * prob.focal_modulation(1.0 - p, gamma) * prob.xlogy_targets(t, log_p)
    return jnp.sum(focal, axis=axis)


class CategoricalFocalCrossentropy(
    Loss, function=categorical_focal_crossentropy, inputs="categorical"
):
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

    alpha: float | tuple[float, ...] = option(default=0.25, check=c.SCALAR_OR_PER_CLASS)
    gamma: float = option(default=2.0, check=c.NON_NEGATIVE)
    from_logits: bool = option(default=False, check=c.BOOL)
    label_smoothing: float = option(default=0.0, check=c.UNIT_INTERVAL)
    axis: int = option(default=-1, check=c.AXIS)
