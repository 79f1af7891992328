"""Ordinal losses: ``y_true`` one-hot (or integer) ordered classes, ``y_pred`` probabilities.

Class ``k`` is the ``k``-th level of an ordered scale, so confusing neighbours costs less than
confusing extremes. The weighted kappa loss is one ratio over the whole batch: its function handle
returns a scalar, and its class handle sums the batch statistics (across devices with
``axis_name``) before dividing, so a sharded batch gives the global value::

    >>> import jaxloss
    >>> y_true = [[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    >>> y_pred = [[0.1, 0.2, 0.6, 0.1], [0.1, 0.5, 0.3, 0.1],
    ...           [0.8, 0.05, 0.05, 0.1], [0.01, 0.09, 0.1, 0.8]]
    >>> print(f"{float(jaxloss.WeightedKappa()(y_true, y_pred)):.7f}")
    -1.1611925
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option

WEIGHTAGE = c.Check(
    lambda x: isinstance(x, str),
    "'linear' or 'quadratic'",
    str,
    lambda x: x in ("linear", "quadratic"),
)


def _kappa_statistics(
    loss: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sample_weight: ArrayLike | None,
    weightage: str,
) -> dict[str, jax.Array]:
    """The sums weighted kappa divides: all of them add across batch shards."""
    y_pred = c.as_float(y_pred, loss=loss, arg="y_pred")
    c.check_rank(loss, "y_pred", y_pred, 2)
    classes = y_pred.shape[-1]
    if classes == 0:
        raise ValueError(
            f"{loss}: `y_pred` must have at least one class; got shape {y_pred.shape}."
        )
    y_true = c.as_input_array(loss, "y_true", y_true)
    if y_true.ndim == y_pred.ndim - 1:
        c.check_integer(loss, "y_true", y_true)
        y_true = jax.nn.one_hot(y_true, classes, dtype=y_pred.dtype)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{loss}: `y_true` must be one-hot with the shape of `y_pred` {tuple(y_pred.shape)} "
            f"or integer labels of shape {tuple(y_pred.shape[:-1])}; got {tuple(y_true.shape)}."
        )
    y_true = y_true.astype(y_pred.dtype).reshape(-1, classes)
    y_pred = y_pred.reshape(-1, classes)
    if sample_weight is None:
        weight = jnp.ones(y_pred.shape[:1], y_pred.dtype)
    else:
        weight = jnp.broadcast_to(jnp.asarray(sample_weight, y_pred.dtype), y_pred.shape[:1])
    levels = jnp.arange(classes, dtype=y_pred.dtype)
    power = 1 if weightage == "linear" else 2
    # TFA's numerator weighs each prediction by its distance to the expected true level, which
    # for one-hot targets is W[label, j].
    expected = y_true @ levels
    distance = jnp.abs(expected[:, None] - levels[None, :]) ** power
    return {
        "numerator": jnp.sum(weight * jnp.sum(distance * y_pred, axis=-1)),
        "true_counts": jnp.sum(weight[:, None] * y_true, axis=0),
        "pred_counts": jnp.sum(weight[:, None] * y_pred, axis=0),
        "count": jnp.sum(weight),
    }


def _kappa_from_statistics(stats: dict[str, jax.Array], weightage: str, epsilon: Any) -> jax.Array:
    levels = jnp.arange(stats["true_counts"].shape[-1], dtype=stats["numerator"].dtype)
    power = 1 if weightage == "linear" else 2
    weights = jnp.abs(levels[:, None] - levels[None, :]) ** power
    chance = stats["true_counts"] @ weights @ stats["pred_counts"]
    count = stats["count"]
    denominator = jnp.where(count == 0, 0.0, chance / jnp.where(count == 0, 1.0, count))
    safe = jnp.where(denominator == 0, 1.0, denominator)
    ratio = jnp.where(denominator == 0, 0.0, stats["numerator"] / safe)
    return jnp.log(ratio + epsilon)


def weighted_kappa(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    weightage: str = "quadratic",
    epsilon: float = 1e-6,
) -> jax.Array:
    """Weighted kappa loss (TFA's ``WeightedKappaLoss``): ``log(sum(W o O) / sum(W o E) + eps)``.

    With levels ``0..C-1``, ``W[i, j] = |i - j|`` (linear) or ``(i - j)^2`` (quadratic), the
    observed term ``sum(W o O) = sum_b sum_j W[k_b, j] y_pred[b, j]`` (with the true level
    ``k_b = sum_i i y_true[b, i]``) and the chance term
    ``sum(W o E) = (sum_b y_true[b])^T W (sum_b y_pred[b]) / N``. ``1 - ratio`` is Cohen's
    weighted kappa of the soft predictions, so the loss lies in ``[-inf, log 2]`` (``log 1 = 0``
    is chance level).

    Args:
      y_true: one-hot targets ``[batch, C]`` (leading axes are flattened into the batch), or
        integer labels ``[batch]``.
      y_pred: class probabilities ``[batch, C]``.
      weightage: ``"quadratic"`` (default) or ``"linear"``.
      epsilon: added to the ratio before the log, >= 0.

    Returns:
      A scalar: the loss of the whole batch (one ratio of batch sums).

    Raises:
      TypeError: non-numeric inputs; options of the wrong type.
      ValueError: an unknown ``weightage``; shapes that do not match.

    Examples:
      >>> import jaxloss
      >>> y_true = [0, 1, 2, 2]
      >>> y_pred = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.1, 0.3, 0.6]]
      >>> print(f"{float(jaxloss.weighted_kappa(y_true, y_pred, weightage='linear')):.6f}")
      -0.875466

    Notes:
      An empty batch, or one where the chance term is 0 (all targets and predictions on one
      level), gives ``log(epsilon)``: TFA's ``div_no_nan``.

      Bad values: One ratio over the whole batch: NaN anywhere makes the loss NaN. Targets and
      predictions are not checked to be distributions (rows are used as given). An empty batch gives
      ``log(epsilon)``.
    """
    weightage = c.check_option("weighted_kappa", "weightage", weightage, WEIGHTAGE)
    epsilon = c.check_option("weighted_kappa", "epsilon", epsilon, c.NON_NEGATIVE)
    stats = _kappa_statistics("weighted_kappa", y_true, y_pred, None, weightage)
    return _kappa_from_statistics(stats, weightage, epsilon)


class WeightedKappa(
    Loss, function=weighted_kappa, aliases=("weighted_kappa_loss",), inputs="categorical"
):
    """Class handle of :func:`weighted_kappa` (TFA's ``WeightedKappaLoss``), a batch statistic.

    ``sample_weight`` (``[batch]``) weighs each sample in every sum of the ratio; with
    ``axis_name`` the sums are taken across devices first, so ``shard_map`` over a sharded batch
    gives the loss of the global batch. ``reduction`` has no effect (the loss is one ratio). The
    number of classes is the last axis of ``y_pred``: TFA's ``num_classes`` argument is not
    needed (``WeightedKappaLoss(num_classes=4)`` ports as ``WeightedKappa()``).

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.WeightedKappa(weightage="linear")
      >>> y_pred = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.1, 0.3, 0.6]]
      >>> print(f"{float(loss([0, 1, 2, 2], y_pred)):.6f}")
      -0.875466
    """

    weightage: str = option(default="quadratic", check=WEIGHTAGE)
    epsilon: float = option(default=1e-6, check=c.NON_NEGATIVE)

    def statistics(
        self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any
    ) -> dict[str, jax.Array]:
        del inputs
        return _kappa_statistics(type(self).__name__, y_true, y_pred, sample_weight, self.weightage)

    def from_statistics(self, statistics: Any) -> jax.Array:
        return _kappa_from_statistics(statistics, self.weightage, self.epsilon)
