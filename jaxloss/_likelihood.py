"""Likelihood and divergence losses: non-negative targets (counts, distributions) against predicted
rates or distributions of the same shape ``[batch, d0, .. dN]``.

>>> import jaxloss
>>> print(f"{float(jaxloss.Poisson()([[1.0, 2.0]], [[1.0, 2.0]])):.4f}")
0.8069
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss

_EPSILON = 1e-7


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

    Examples:
      >>> import numpy as np, jaxloss
      >>> print(np.asarray(jaxloss.kl_divergence([[0., 1.], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]])
      ...       ).round(4))
      [0.5108 0.    ]
    """
    y_true, y_pred = c.match_shapes("kl_divergence", y_true, y_pred)
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
