"""Hinge losses for maximum-margin classifiers: hinge, squared hinge, categorical hinge.

For ``hinge`` and ``squared_hinge``, labels are expected in ``{-1, 1}``; labels given in ``{0, 1}``
are converted to ``{-1, 1}`` as Keras does: when *every* entry of ``y_true`` is 0 or 1 the whole
array is mapped by ``2 y - 1`` (a batch mixing both conventions is taken as ``{-1, 1}``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss


def _to_signed_labels(y_true: jax.Array) -> jax.Array:
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Hinge loss, ``mean(max(1 - y_true * y_pred, 0), axis=-1)``.

    Args:
      y_true: labels in ``{-1, 1}`` (or ``{0, 1}``, converted), shape ``[batch, d0, .. dN]``.
      y_pred: raw scores, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Examples:
      >>> import jaxloss
      >>> jaxloss.hinge([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])
      Array([1.1, 1.5], dtype=float32)

    Notes:
      The gradient is 0 where the margin is met and ``-y_true / d`` elsewhere.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. Labels in {0, 1} become -1/+1 only when every label of the call is 0 or 1 (Keras'
      rule): one label outside {0, 1} (NaN included) leaves all labels as given, so it changes the
      other samples' losses too.
    """
    y_true, y_pred = c.match_shapes("hinge", y_true, y_pred)
    y_true = _to_signed_labels(y_true)
    return jnp.mean(jnp.maximum(1.0 - y_true * y_pred, 0.0), axis=-1)


class Hinge(Loss, function=hinge, inputs="binary"):
    """Class handle of :func:`hinge`.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.Hinge()([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])):.1f}")
      1.3
    """


def squared_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Squared hinge loss, ``mean(max(1 - y_true * y_pred, 0) ** 2, axis=-1)``.

    Args:
      y_true: labels in ``{-1, 1}`` (or ``{0, 1}``, converted), shape ``[batch, d0, .. dN]``.
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
      >>> jaxloss.squared_hinge([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])
      Array([1.46, 2.26], dtype=float32)
    """
    y_true, y_pred = c.match_shapes("squared_hinge", y_true, y_pred)
    y_true = _to_signed_labels(y_true)
    return jnp.mean(jnp.square(jnp.maximum(1.0 - y_true * y_pred, 0.0)), axis=-1)


class SquaredHinge(Loss, function=squared_hinge, inputs="binary"):
    """Class handle of :func:`squared_hinge`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.SquaredHinge()
      >>> print(f"{float(loss([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])):.2f}")
      1.86
    """


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """Categorical (Crammer-Singer) hinge loss for one-hot targets.

    ``pos = sum(y_true * y_pred, -1)``; ``neg = max((1 - y_true) * y_pred, -1)``;
    ``loss = max(neg - pos + 1, 0)``.

    Args:
      y_true: one-hot targets (values in ``{0, 1}``), shape ``[batch, d0, .. dN]``.
      y_pred: raw scores, same shape.

    Returns:
      Per-sample loss, shape ``[batch, d0, .. dN-1]``.

    Raises:
      ValueError: shapes that do not match or broadcast.

    Notes:
      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Targets are not checked to be one-hot: they weight the scores as given; an ``inf``
      score gives NaN.

    Examples:
      >>> import jaxloss
      >>> jaxloss.categorical_hinge([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])
      Array([1.2, 1.6], dtype=float32)
    """
    y_true, y_pred = c.match_shapes("categorical_hinge", y_true, y_pred)
    c.check_classes("categorical_hinge", "y_pred", y_pred, -1)
    positive = jnp.sum(y_true * y_pred, axis=-1)
    negative = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(negative - positive + 1.0, 0.0)


class CategoricalHinge(Loss, function=categorical_hinge, inputs="categorical"):
    """Class handle of :func:`categorical_hinge`.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.CategoricalHinge()
      >>> print(f"{float(loss([[0., 1.], [0., 0.]], [[0.6, 0.4], [0.4, 0.6]])):.1f}")
      1.4
    """
