"""Likelihood and divergence losses: non-negative targets (counts, distributions, observations)
against predicted rates, distributions or means of the same shape ``[batch, d0, .. dN]``.

The Keras losses take probabilities and rates; the log-space ones (``negative_log_likelihood``,
``poisson_nll``, ``log_kl_divergence``, ``generalized_kl_divergence``) take ``y_pred`` as
log-probabilities or log-rates, the form a network's last layer produces, and ``gaussian_nll``
takes the predicted mean with its variance as a call-time input.

>>> import jaxloss
>>> print(f"{float(jaxloss.Poisson()([[1.0, 2.0]], [[1.0, 2.0]])):.4f}")
0.8069
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss import _probability as prob
from jaxloss._loss import Loss, option

_EPSILON = 1e-7
# Function handles also take a (traced) weight array; class handles keep hashable tuples.
_NLL_WEIGHTS = dataclasses.replace(c.PER_CLASS_WEIGHTS, array_ok=True)


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

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. A negative rate gives NaN for that sample (as in Keras); negative or non-integer counts
      are used as given.
    """
    y_true, y_pred = c.match_shapes("poisson", y_true, y_pred)
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + _EPSILON), axis=-1)


class Poisson(Loss, function=poisson, inputs="binary"):
    """Class handle of :func:`poisson`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.Poisson()([[1., 0.], [2., 2.]], [[1., 1.], [2., 1.]])):.4f}")
      0.9034
    """


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

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Both sides are clipped to ``[1e-7, 1]`` (Keras), not renormalised: negative values,
      values above 1 and ``inf`` give a finite loss.

    Examples:
      >>> import numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.kl_divergence([[0., 1.], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]])
      ...       ).round(4))
      [0.5108 0.    ]
    """
    y_true, y_pred = c.match_shapes("kl_divergence", y_true, y_pred)
    c.check_classes("kl_divergence", "y_pred", y_pred, -1)
    t = jnp.clip(y_true, _EPSILON, 1.0)
    p = jnp.clip(y_pred, _EPSILON, 1.0)
    return jnp.sum(t * jnp.log(t / p), axis=-1)


class KLDivergence(
    Loss,
    function=kl_divergence,
    aliases=("kld", "kullback_leibler_divergence"),
    inputs="categorical",
):
    """Class handle of :func:`kl_divergence`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.KLDivergence()
      >>> print(f"{float(loss([[0., 1.], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]])):.4f}")
      0.2554
    """


# Keras 1/2 spellings still found in user code.
kld = KLD = kullback_leibler_divergence = kl_divergence


# --- log-space likelihoods: log-probabilities, log-rates, Gaussian means with variances ---
# These take ``y_pred`` in log space (or a mean with a variance), the form a network's last layer
# produces, so no log of a probability is ever taken here.

_VAR_EPS = c.POSITIVE


def _require_classes(name: str, y_pred: jax.Array, axis: int | tuple[int, ...] | None = -1) -> None:
    """An empty class axis has no loss to define: refuse it at trace time."""
    axes = range(y_pred.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    if any(y_pred.shape[a] == 0 for a in axes):
        raise ValueError(
            f"{name}: `y_pred` must have at least one class; got shape {tuple(y_pred.shape)}."
        )


def negative_log_likelihood(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    axis: int = -1,
    ignore_class: int | None = None,
    class_weight: ArrayLike | None = None,
) -> jax.Array:
    """Negative log-likelihood of integer labels under log-probabilities (``torch.nn.NLLLoss``).

    ``loss = -w[label] * y_pred[label]`` along ``axis``, with class weights ``w`` (1 when
    ``None``). ``y_pred`` is used as given (typically ``log_softmax`` output): it is not
    normalised here.

    Args:
      y_true: integer labels, the shape of ``y_pred`` without ``axis`` (or with a 1 there).
      y_pred: log-probabilities, classes on ``axis``.
      axis: the class axis.
      ignore_class: a label whose elements get a loss of 0 and a zero gradient; the class handle
        also masks them, so its mean is over the valid elements only.
      class_weight: optional weights, one per class.

    Returns:
      Per-element loss, the shape of ``y_pred`` without ``axis``.

    Raises:
      TypeError: non-integer labels, an option of the wrong kind.
      ValueError: labels whose shape does not match, ``class_weight`` without one value per class.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> log_p = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
      >>> print(np.asarray(jaxloss.negative_log_likelihood([0, 2], log_p)).round(4))
      [0.3567 0.2231]
      >>> print(np.asarray(jaxloss.negative_log_likelihood([0, -100], log_p, ignore_class=-100)
      ...       ).round(4))
      [0.3567 0.    ]

    Notes:
      A label outside ``[0, K)`` that is not ``ignore_class`` gives ``NaN`` for that element only
      (torch raises an error on the host instead, which ``jit`` cannot do).

      Bad values: Only the entry of the sample's label is read: NaN there makes that sample's loss
      NaN; the other samples are exact. A label outside ``[0, C)`` makes that sample's loss NaN; the
      other samples are exact. An ``ignore_class`` sample costs 0 with a zero gradient.
      Log-probabilities are not checked to be normalised or <= 0.
    """
    name = "negative_log_likelihood"
    axis = c.check_option(name, "axis", axis, c.AXIS)
    ignore_class = c.check_option(name, "ignore_class", ignore_class, c.OPTIONAL_INT)
    class_weight = c.check_option(name, "class_weight", class_weight, _NLL_WEIGHTS)
    y_true, y_pred, axis = prob.sparse_prepare(name, y_true, y_pred, axis)
    _require_classes(name, y_pred, axis)
    k = y_pred.shape[axis]
    c.check_num_classes(name, "class_weight", class_weight, k)
    shape = prob.class_axis_shape(axis, y_pred.ndim)
    is_label = jnp.arange(k).reshape(shape) == jnp.expand_dims(y_true, axis)
    loss = -jnp.sum(jnp.where(is_label, y_pred, 0.0), axis=axis)
    if class_weight is not None:
        w = jnp.asarray(class_weight, y_pred.dtype).reshape(shape)
        loss = loss * jnp.sum(jnp.where(is_label, w, 0.0), axis=axis)
    loss = jnp.where((y_true >= 0) & (y_true < k), loss, jnp.nan)
    if ignore_class is not None:
        loss = jnp.where(y_true == ignore_class, 0.0, loss)
    return loss


class NegativeLogLikelihood(
    Loss, function=negative_log_likelihood, aliases=("nll",), inputs="sparse_log_probs"
):
    """Class handle of :func:`negative_log_likelihood`.

    With ``ignore_class`` the ignored elements are masked: the mean is over the valid ones (a
    batch with none gives 0).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> log_p = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
      >>> loss = jaxloss.NegativeLogLikelihood(ignore_class=-100)
      >>> print(f"{float(loss([0, -100], log_p)):.4f}")
      0.3567
    """

    axis: int = option(default=-1, check=c.AXIS)
    ignore_class: int | None = option(default=None, check=c.OPTIONAL_INT)
    class_weight: tuple[float, ...] | None = option(default=None, check=c.PER_CLASS_WEIGHTS)

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> Any:
        if self.ignore_class is None:
            return None
        y_pred = jnp.asarray(y_pred)
        axis = c.normalize_axis(self, "y_pred", self.axis, y_pred.ndim)
        return prob.squeeze_sparse_labels(jnp.asarray(y_true), y_pred, axis) != self.ignore_class


def _broadcast_var(name: str, var: Any, mean: jax.Array) -> jax.Array:
    """torch's variance shapes: the mean's, the mean's without the last axis, or a trailing 1."""
    if var is None:
        return jnp.ones((), mean.dtype)
    var = c.as_float(var, mean.dtype, loss=name, arg="var")
    shape, target = tuple(var.shape), tuple(mean.shape)
    if shape == target[:-1] and shape != target:
        var = var[..., None]
    elif not (shape in ((), target) or (shape[:-1] == target[:-1] and shape[-1:] == (1,))):
        raise ValueError(
            f"{name}: `var` must have the shape of `y_pred` {target}, that shape without its "
            f"last axis, with a 1 there, or no shape; got {shape}."
        )
    return var


def gaussian_nll(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    var: ArrayLike | None = None,
    full: bool = False,
    eps: float = 1e-6,
) -> jax.Array:
    """Gaussian negative log-likelihood of ``y_true`` under ``N(y_pred, var)``, last-axis mean.

    ``loss = mean(0.5 * (log(v) + (y_true - y_pred)^2 / v), axis=-1)`` with ``v = max(var, eps)``,
    plus ``0.5 * log(2 pi)`` when ``full`` (``torch.nn.GaussianNLLLoss``).

    Args:
      y_true: observations, shape ``[batch, d0, .. dN]``.
      y_pred: predicted means, same shape.
      var: predicted variances (a call-time input): the shape of ``y_pred``, that shape without
        the last axis or with a 1 there (one variance per sample), or a scalar; ``None`` means 1.
      full: whether to add the constant ``0.5 * log(2 pi)``.
      eps: the floor of the variance, for stability.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: an option of the wrong kind.
      ValueError: a ``var`` of another shape, ``eps <= 0``.

    Examples:
      >>> import numpy as np, jaxloss
      >>> loss = jaxloss.gaussian_nll([[1.0, 2.0]], [[0.0, 2.0]], var=[[4.0, 1.0]])
      >>> print(np.asarray(loss).round(4))  # (log 4 + 1/4) / 4
      [0.4091]

    Notes:
      As in torch, the variance is clamped at ``eps`` for the value but its gradient passes
      through the clamp unchanged. A negative variance is clamped too (torch raises an error on
      the host instead, which ``jit`` cannot do).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. A negative or zero variance is clamped at ``eps`` (torch raises on the host instead).
    """
    name = "gaussian_nll"
    full = c.check_option(name, "full", full, c.BOOL)
    eps = c.check_option(name, "eps", eps, _VAR_EPS)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    v = _broadcast_var(name, var, y_pred)
    v = v + jax.lax.stop_gradient(jnp.maximum(v, eps) - v)
    loss = 0.5 * (jnp.log(v) + jnp.square(y_true - y_pred) / v)
    if full:
        loss = loss + 0.5 * np.log(2.0 * np.pi)
    return jnp.mean(loss, axis=-1)


class GaussianNLL(Loss, function=gaussian_nll, inputs="regression"):
    """Class handle of :func:`gaussian_nll`; ``var`` is a call-time input.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.GaussianNLL()
      >>> print(f"{float(loss([[1.0, 2.0]], [[0.0, 2.0]], var=[[4.0, 1.0]])):.4f}")
      0.4091
    """

    full: bool = option(default=False, check=c.BOOL)
    eps: float = option(default=1e-6, check=_VAR_EPS)


def poisson_nll(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
) -> jax.Array:
    """Poisson negative log-likelihood of counts, rates given as logs (``torch.nn.PoissonNLLLoss``).

    Per element, with ``log_input``: ``exp(y_pred) - y_true * y_pred`` (``y_pred`` is the log-rate);
    without it: ``y_pred - y_true * log(y_pred + eps)``. With ``full`` the Stirling approximation
    of ``log(y_true!)``, ``y log y - y + 0.5 log(2 pi y)``, is added where ``y_true > 1``. The loss
    is the mean over the last axis.

    Args:
      y_true: observed counts, shape ``[batch, d0, .. dN]``.
      y_pred: log-rates (or rates without ``log_input``), same shape.
      log_input: whether ``y_pred`` holds log-rates.
      full: whether to add the Stirling term.
      eps: keeps ``log`` finite at a rate of 0 when ``log_input=False``.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      TypeError: an option of the wrong kind.
      ValueError: shapes that do not match, ``eps <= 0``.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Negative or non-integer counts are used as given (the loss can be negative).

    Examples:
      >>> import numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.poisson_nll([[2.0, 0.0]], [[0.0, 0.0]])).round(4))
      [1.]
    """
    name = "poisson_nll"
    log_input = c.check_option(name, "log_input", log_input, c.BOOL)
    full = c.check_option(name, "full", full, c.BOOL)
    eps = c.check_option(name, "eps", eps, c.POSITIVE)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    if log_input:
        loss = jnp.exp(y_pred) - y_true * y_pred
    else:
        loss = y_pred - y_true * jnp.log(y_pred + eps)
    if full:
        safe = jnp.where(y_true > 1, y_true, 2.0)
        stirling = safe * jnp.log(safe) - safe + 0.5 * jnp.log(2.0 * np.pi * safe)
        loss = loss + jnp.where(y_true > 1, stirling, 0.0)
    return jnp.mean(loss, axis=-1)


class PoissonNLL(Loss, function=poisson_nll, inputs="regression"):
    """Class handle of :func:`poisson_nll`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.PoissonNLL()([[2.0, 0.0]], [[0.0, 0.0]])):.4f}")
      1.0000
    """

    log_input: bool = option(default=True, check=c.BOOL)
    full: bool = option(default=False, check=c.BOOL)
    eps: float = option(default=1e-8, check=c.POSITIVE)


def _sum(x: jax.Array, axis: Any, where: Any) -> jax.Array:
    return jnp.sum(x, axis=axis, where=None if where is None else jnp.asarray(where, bool))


def log_kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    log_target: bool = False,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """KL divergence ``KL(target || prediction)`` with the prediction given as log-probabilities.

    ``loss = sum(t * (log t - y_pred), axis)`` where ``t = y_true`` (``0 log 0 = 0``), or, with
    ``log_target``, ``t = exp(y_true)`` and ``log t = y_true`` (exact for targets far below the
    float32 floor). This is ``torch.nn.KLDivLoss`` per sample and optax's ``kl_divergence`` /
    ``kl_divergence_with_log_targets``.

    Args:
      y_true: target probabilities, or log-probabilities with ``log_target``.
      y_pred: predicted log-probabilities, same shape.
      log_target: whether ``y_true`` holds log-probabilities.
      axis: the axis (or axes) summed over.
      where: optional boolean mask (a call-time input); elements where it is False are left out.

    Returns:
      Per-sample loss, ``y_pred``'s shape without ``axis``.

    Raises:
      TypeError: an option of the wrong kind.
      ValueError: shapes that do not match.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> t, log_p = jnp.array([[0.5, 0.5]]), jnp.log(jnp.array([[0.25, 0.75]]))
      >>> print(np.asarray(jaxloss.log_kl_divergence(t, log_p)).round(4))
      [0.1438]
      >>> print(np.asarray(jaxloss.log_kl_divergence(jnp.log(t), log_p, log_target=True)
      ...       ).round(4))
      [0.1438]

    Notes:
      A negative target with ``log_target=False`` gives ``NaN`` (its log is undefined).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. A negative target with ``log_target=False`` gives NaN for that sample; distributions
      are not checked to sum to 1.
    """
    name = "log_kl_divergence"
    log_target = c.check_option(name, "log_target", log_target, c.BOOL)
    axis = c.check_option(name, "axis", axis, c.AXES)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    _require_classes(name, y_pred, axis)
    if log_target:
        pointwise = jnp.exp(y_true) * (y_true - y_pred)
    else:
        pointwise = jax.scipy.special.xlogy(y_true, y_true) - y_true * y_pred
    return _sum(pointwise, axis, where)


class LogKLDivergence(Loss, function=log_kl_divergence, inputs="categorical"):
    """Class handle of :func:`log_kl_divergence`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> loss = jaxloss.LogKLDivergence(log_target=True)
      >>> t, log_p = jnp.log(jnp.array([[0.5, 0.5]])), jnp.log(jnp.array([[0.25, 0.75]]))
      >>> print(f"{float(loss(t, log_p)):.4f}")
      0.1438
    """

    log_target: bool = option(default=False, check=c.BOOL)
    axis: int | tuple[int, ...] = option(default=-1, check=c.AXES)


def generalized_kl_divergence(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Generalized KL divergence between non-negative measures, the prediction as a log.

    ``loss = sum(t log t - t * y_pred + exp(y_pred) - t, axis)`` for ``t = y_true``: the KL
    divergence extended to unnormalised ``t`` and ``exp(y_pred)`` (the I-divergence of
    non-negative matrix factorisation); 0 exactly when ``t == exp(y_pred)``. optax's
    ``generalized_kl_divergence``.

    Args:
      y_true: non-negative targets.
      y_pred: log of the predicted non-negative measure, same shape.
      axis: the axis (or axes) summed over.
      where: optional boolean mask (a call-time input); elements where it is False are left out.

    Returns:
      Per-sample loss, ``y_pred``'s shape without ``axis``.

    Raises:
      TypeError: an option of the wrong kind.
      ValueError: shapes that do not match.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. A negative target gives NaN for that sample (its log); the two sides need not sum to 1.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.generalized_kl_divergence([[2.0, 1.0]], jnp.log(jnp.array(
      ...     [[2.0, 1.0]])))).round(4))
      [0.]
      >>> print(np.asarray(jaxloss.generalized_kl_divergence([[1.0]], [[0.0]])).round(4))
      [0.]
    """
    name = "generalized_kl_divergence"
    axis = c.check_option(name, "axis", axis, c.AXES)
    y_true, y_pred = c.match_shapes(name, y_true, y_pred)
    _require_classes(name, y_pred, axis)
    pointwise = jax.scipy.special.xlogy(y_true, y_true) - y_true * y_pred + jnp.exp(y_pred) - y_true
    return _sum(pointwise, axis, where)


class GeneralizedKLDivergence(Loss, function=generalized_kl_divergence, inputs="categorical"):
    """Class handle of :func:`generalized_kl_divergence`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.GeneralizedKLDivergence()([[2.0, 0.0]], [[0.0, 0.0]])):.4f}")
      1.3863
    """

    axis: int | tuple[int, ...] = option(default=-1, check=c.AXES)
