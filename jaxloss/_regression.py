"""Regression losses: real-valued targets and predictions of the same shape ``[batch, d0, .. dN]``.

Every function takes ``(y_true, y_pred)`` in Keras order and returns the unreduced per-sample loss
(the input shape minus the last axis, unless the loss takes an ``axis``). ``y_true`` is cast to
``y_pred``'s dtype; Keras' rank rule lines ``[batch]`` up with ``[batch, 1]``; other shapes must be
equal, or ``y_true`` must broadcast to ``y_pred``, else ``ValueError``. A scalar has no batch axis
and is refused.

>>> import jaxloss
>>> jaxloss.mean_squared_error([[0., 1.]], [[1., 1.]])
Array([0.5], dtype=float32)
>>> print(f"{float(jaxloss.Huber(delta=0.5)([[0., 1.]], [[1., 1.]])):.3f}")
0.188
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option

# Keras' backend.epsilon(): the floor used by MAPE and MSLE.
EPSILON = 1e-7


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Mean of squared errors over the last axis.

    ``loss = mean((y_true - y_pred) ** 2, axis=-1)``

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> jaxloss.mean_squared_error([[0., 1.], [0., 0.]], [[1., 1.], [1., 0.]])
      Array([0.5, 0.5], dtype=float32)

    Notes:
      Non-finite inputs propagate (inf error gives inf; NaN gives NaN).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Values are used as given, not clipped: an ``inf`` error gives ``inf``.
    """
    y_true, y_pred = c.match_shapes("mean_squared_error", y_true, y_pred)
    return jnp.mean(jnp.square(y_pred - y_true), axis=-1)


class MeanSquaredError(Loss, function=mean_squared_error, aliases=("mse",)):
    """Class handle of :func:`mean_squared_error` (reductions, sample weights, config).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> y_true, y_pred = [[0., 1.], [0., 0.]], [[1., 1.], [1., 0.]]
      >>> jaxloss.MeanSquaredError()(y_true, y_pred)
      Array(0.5, dtype=float32)
      >>> loss = jaxloss.MeanSquaredError()
      >>> print(f"{float(loss(y_true, y_pred, sample_weight=[0.7, 0.3])):.2f}")
      0.25
      >>> jaxloss.MeanSquaredError(reduction="sum")(jnp.ones((2, 2)), jnp.zeros((2, 2)))
      Array(2., dtype=float32)
      >>> jaxloss.MeanSquaredError(reduction="none")(jnp.ones((2, 2)), jnp.zeros((2, 2)))
      Array([1., 1.], dtype=float32)
    """


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Mean of absolute errors over the last axis.

    ``loss = mean(|y_true - y_pred|, axis=-1)``

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> jaxloss.mean_absolute_error([[0., 1.], [0., 0.]], [[1., 1.], [1., 0.]])
      Array([0.5, 0.5], dtype=float32)

    Notes:
      The gradient at zero error is 0 (``sign(0)``).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Values are used as given, not clipped: an ``inf`` error gives ``inf``.
    """
    y_true, y_pred = c.match_shapes("mean_absolute_error", y_true, y_pred)
    return jnp.mean(jnp.abs(y_pred - y_true), axis=-1)


class MeanAbsoluteError(Loss, function=mean_absolute_error, aliases=("mae",)):
    """Class handle of :func:`mean_absolute_error`.

    Examples:
      >>> import jaxloss
      >>> jaxloss.MeanAbsoluteError()([[0., 1.], [0., 0.]], [[1., 1.], [1., 0.]])
      Array(0.5, dtype=float32)
    """


def mean_absolute_percentage_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Mean absolute percentage error over the last axis.

    ``loss = 100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)``

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.

    Returns:
      Per-sample loss in percent, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> jaxloss.mean_absolute_percentage_error([[2., 4.]], [[1., 5.]])
      Array([37.5], dtype=float32)

    Notes:
      ``y_true == 0`` is floored to ``1e-7`` as in Keras: the loss is large (1e9 * |y_pred|) but
      finite, and so is its gradient.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. ``|y_true|`` below ``1e-7`` is floored there (Keras): a zero target gives a large,
      finite loss.
    """
    y_true, y_pred = c.match_shapes("mean_absolute_percentage_error", y_true, y_pred)
    ratio = jnp.abs(y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON)
    return 100.0 * jnp.mean(ratio, axis=-1)


class MeanAbsolutePercentageError(Loss, function=mean_absolute_percentage_error, aliases=("mape",)):
    """Class handle of :func:`mean_absolute_percentage_error`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MeanAbsolutePercentageError()
      >>> print(f"{float(loss([[2., 1.], [2., 3.]], [[1., 1.], [1., 0.]])):.1f}")
      50.0
    """


def mean_squared_logarithmic_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Mean squared error between ``log(1 + y)`` of targets and predictions.

    ``loss = mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1)) ** 2, axis=-1)``

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.mean_squared_logarithmic_error([[1., 3.]], [[0., 3.]])[0]):.4f}")
      0.2402

    Notes:
      Negative values are floored at ``1e-7`` (as in Keras), so negative inputs give a finite loss
      and a zero gradient with respect to the floored entries.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Negative values on either side are floored (Keras): they cost as about 0 would, with a
      zero gradient.
    """
    y_true, y_pred = c.match_shapes("mean_squared_logarithmic_error", y_true, y_pred)
    log_pred = jnp.log1p(jnp.maximum(y_pred, EPSILON))
    log_true = jnp.log1p(jnp.maximum(y_true, EPSILON))
    return jnp.mean(jnp.square(log_pred - log_true), axis=-1)


class MeanSquaredLogarithmicError(Loss, function=mean_squared_logarithmic_error, aliases=("msle",)):
    """Class handle of :func:`mean_squared_logarithmic_error`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MeanSquaredLogarithmicError()
      >>> print(f"{float(loss([[0., 1.], [0., 0.]], [[1., 1.], [1., 0.]])):.3f}")
      0.240
    """


def _l2_normalize(x: jax.Array, axis: int) -> jax.Array:
    # The floor on the squared norm keeps zero vectors at 0 with a finite gradient.
    squared = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(squared, 1e-12))


def cosine_similarity(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> jax.Array:
    """Negative cosine similarity along ``axis`` (so minimising it aligns the vectors).

    ``loss = -sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``, in ``[-1, 1]``.

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.
      axis: the axis along which the similarity is computed.

    Returns:
      Per-sample loss, the input shape without ``axis``.

    Raises:
      ValueError: shapes that do not match or broadcast; ``axis`` out of range.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.cosine_similarity([[0., 1.], [1., 1.]], [[1., 0.], [1., 1.]]))
      [-0. -1.]

    Notes:
      A zero vector on either side gives 0 (not NaN) and a finite gradient.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. ``inf`` gives NaN (``inf / inf``); a zero vector gives 0.
    """
    axis = c.check_option("cosine_similarity", "axis", axis, c.AXIS)
    y_true, y_pred = c.match_shapes("cosine_similarity", y_true, y_pred)
    axis = c.normalize_axis("cosine_similarity", "y_pred", axis, y_pred.ndim)
    return -jnp.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis)


class CosineSimilarity(Loss, function=cosine_similarity, aliases=("cosine_proximity",)):
    """Class handle of :func:`cosine_similarity`.

    Args:
      axis: the axis along which the similarity is computed (default -1).

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.CosineSimilarity(axis=1)
      >>> print(f"{float(loss([[0., 1.], [1., 1.]], [[1., 0.], [1., 1.]])):.2f}")
      -0.50
    """

    axis: int = option(default=-1, check=c.AXIS)


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> jax.Array:
    """Huber loss: quadratic for small errors, linear beyond ``delta``.

    ``x = y_pred - y_true``; ``loss = mean(0.5 x^2 if |x| <= delta else delta (|x| - 0.5 delta))``
    over the last axis.

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.
      delta: the error at which the loss turns linear; must be > 0.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: ``delta <= 0``; shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.huber([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]]))
      [0.18 0.13]

    Notes:
      Linear growth keeps gradients bounded by ``delta`` even for huge errors.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Values are used as given, not clipped: an ``inf`` error gives ``inf``.
    """
    delta = c.check_option("huber", "delta", delta, c.POSITIVE)
    y_true, y_pred = c.match_shapes("huber", y_true, y_pred)
    error = jnp.abs(y_pred - y_true)
    delta = jnp.asarray(delta, y_pred.dtype)
    quadratic = jnp.minimum(error, delta)
    # Splitting |x| into its quadratic and linear parts avoids a `where` over two branches
    # (one of which would be evaluated, and differentiated, at huge values).
    linear = error - quadratic
    return jnp.mean(0.5 * jnp.square(quadratic) + delta * linear, axis=-1)


class Huber(Loss, function=huber, aliases=("huber_loss",), default_name="huber_loss"):
    """Class handle of :func:`huber`.

    Args:
      delta: the error at which the loss turns linear; must be > 0 (default 1.0).

    Raises:
      ValueError: ``delta <= 0``.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.Huber()
      >>> print(f"{float(loss([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])):.3f}")
      0.155
    """

    delta: float = option(default=1.0, check=c.POSITIVE)


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Mean of ``log(cosh(y_pred - y_true))`` over the last axis.

    Computed as ``x + softplus(-2x) - log(2)``, which is exact and stays finite for errors far
    beyond where ``cosh`` overflows (float32 ``cosh`` overflows at |x| ~ 89; this is fine at 1e4).

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.log_cosh([[0., 1.], [0., 0.]], [[1., 1.], [0., 0.]])[0]):.3f}")
      0.217
      >>> print(f"{float(jaxloss.log_cosh([[0.]], [[1e4]])[0]):.1f}")
      9999.3

    Notes:
      Behaves like ``x^2 / 2`` for small errors and ``|x| - log 2`` for large ones; the gradient
      is ``tanh(x)``, bounded by 1.

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Values are used as given, not clipped: an ``inf`` error gives ``inf``.
    """
    y_true, y_pred = c.match_shapes("log_cosh", y_true, y_pred)
    x = jnp.abs(y_pred - y_true)
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - jnp.log(2.0).astype(x.dtype), axis=-1)


class LogCosh(Loss, function=log_cosh, aliases=("logcosh",)):
    """Class handle of :func:`log_cosh`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.LogCosh()([[0., 1.], [0., 0.]], [[1., 1.], [0., 0.]])):.3f}")
      0.108
    """


# Keras 1/2 short names, importable so that old code ports by changing the import.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
logcosh = log_cosh
huber_loss = huber
cosine_proximity = cosine_similarity


# --- robust and quantile regression, cosine distance (beyond Keras: PyTorch, optax, TFA) ---


def smooth_l1(y_true: ArrayLike, y_pred: ArrayLike, beta: float = 1.0) -> jax.Array:
    """Smooth L1 loss (``torch.nn.SmoothL1Loss``), last-axis mean.

    With ``e = |y_true - y_pred|``: ``0.5 * e^2 / beta`` where ``e < beta``, else
    ``e - 0.5 * beta``. ``beta = 0`` is the L1 loss; ``smooth_l1(beta=d) == huber(delta=d) / d``.

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.
      beta: ``>= 0``, where the quadratic part turns linear.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: a non-numeric ``beta``.
      ValueError: a negative ``beta``, shapes that do not match.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Values are used as given, not clipped: an ``inf`` error gives ``inf``.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.smooth_l1([[0.0, 0.0]], [[0.5, 3.0]]))  # (0.125 + 2.5) / 2
      [1.3125]
    """
    beta = c.check_option("smooth_l1", "beta", beta, c.NON_NEGATIVE)
    y_true, y_pred = c.match_shapes("smooth_l1", y_true, y_pred)
    error = jnp.abs(y_true - y_pred)
    if isinstance(beta, float) and beta == 0.0:
        return jnp.mean(error, axis=-1)
    quadratic = 0.5 * jnp.square(error) / beta
    return jnp.mean(jnp.where(error < beta, quadratic, error - 0.5 * beta), axis=-1)


class SmoothL1(Loss, function=smooth_l1):
    """Class handle of :func:`smooth_l1`.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.SmoothL1(beta=0.5)([[0.0, 0.0]], [[0.5, 3.0]]))
      1.5
    """

    beta: float = option(default=1.0, check=c.NON_NEGATIVE)


def pinball_loss(y_true: ArrayLike, y_pred: ArrayLike, tau: float = 0.5) -> jax.Array:
    """Pinball (quantile) loss for the ``tau``-quantile, last-axis mean.

    With ``e = y_true - y_pred``: ``loss = mean(max(tau * e, (tau - 1) * e), axis=-1)``; its
    minimiser over ``y_pred`` is the ``tau``-quantile of ``y_true``. ``tau = 0.5`` is half the MAE.

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predicted quantiles, same shape.
      tau: the quantile, in ``[0, 1]``.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: a non-numeric ``tau``.
      ValueError: ``tau`` outside ``[0, 1]``, shapes that do not match.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Values are used as given, not clipped: an ``inf`` error gives ``inf``.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.pinball_loss([[1.0, 1.0]], [[0.0, 2.0]], tau=0.9))  # (0.9 + 0.1) / 2
      [0.5]
    """
    tau = c.check_option("pinball_loss", "tau", tau, c.UNIT_INTERVAL)
    y_true, y_pred = c.match_shapes("pinball_loss", y_true, y_pred)
    error = y_true - y_pred
    return jnp.mean(jnp.maximum(tau * error, (tau - 1.0) * error), axis=-1)


class PinballLoss(Loss, function=pinball_loss, aliases=("quantile_loss",)):
    """Class handle of :func:`pinball_loss`.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.PinballLoss(tau=0.1)([[1.0, 1.0]], [[0.0, 2.0]]))
      0.5
    """

    tau: float = option(default=0.5, check=c.UNIT_INTERVAL)


def cosine_distance(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    epsilon: float | jax.Array = 1e-12,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Cosine distance ``1 - cos(y_true, y_pred)`` along ``axis``, in ``[0, 2]``.

    ``cos = sum(a * b) / (sqrt(max(sum(a^2), epsilon)) * sqrt(max(sum(b^2), epsilon)))``: the
    ``epsilon`` floor on the squared norms makes a zero vector score a distance of 1 (Keras'
    ``l2_normalize`` floor is the default; optax's default of 0 gives ``NaN`` there).

    Args:
      y_true: targets, shape ``[batch, d0, .. dN]``.
      y_pred: predictions, same shape.
      axis: the axis (or axes) of the vectors.
      epsilon: ``>= 0``, the floor of each squared norm.
      where: optional boolean mask (a call-time input): elements where it is False are left out
        of every sum.

    Returns:
      Per-sample distance, ``y_pred``'s shape without ``axis``.

    Raises:
      TypeError: an option of the wrong kind.
      ValueError: a negative ``epsilon``, shapes that do not match.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. ``inf`` gives NaN (``inf / inf``); a zero vector gives 1.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.cosine_distance([[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [3.0, 3.0]]))
      [1. 0.]
    """
    name = "cosine_distance"
    axis = c.check_option(name, "axis", axis, c.AXES)
    epsilon = c.check_option(name, "epsilon", epsilon, c.NON_NEGATIVE)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    if where is not None:
        where = jnp.asarray(where, bool)

    def norm(x: jax.Array) -> jax.Array:
        squared = jnp.sum(jnp.square(x), axis=axis, where=where, keepdims=True)
        return jnp.sqrt(jnp.maximum(squared, epsilon))

    cos = jnp.sum((y_true / norm(y_true)) * (y_pred / norm(y_pred)), axis=axis, where=where)
    return 1.0 - cos


class CosineDistance(Loss, function=cosine_distance):
    """Class handle of :func:`cosine_distance`.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.CosineDistance()([[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [3.0, 3.0]]))
      0.5
    """

    axis: int | tuple[int, ...] = option(default=-1, check=c.AXES)
    epsilon: float = option(default=1e-12, check=c.NON_NEGATIVE)
