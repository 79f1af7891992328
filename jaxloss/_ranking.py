"""Ranking losses: ``y_true`` relevance labels, ``y_pred`` scores, both ``[..., list_size]``.

The last axis is the list; every leading axis is a batch axis, and each function returns one loss
per list (``[...]``). ``where`` (same shape, boolean) marks the valid items of padded lists: an
invalid item takes part in nothing, whatever its score or label (NaN included), and a list with no
valid item (or, for the pairwise losses, no ordered pair) has loss 0 and a zero gradient. The class
handles take ``where`` at call time and leave such lists out of the mean::

    >>> import jax.numpy as jnp
    >>> import jaxloss
    >>> scores = jnp.array([[2.0, 1.0, 0.5], [0.3, 0.1, 9.0]])
    >>> labels = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    >>> where = jnp.array([[True, True, True], [False, False, False]])
    >>> print(jaxloss.ranking_softmax(labels, scores, where=where))
    [0.46436882 0.        ]
    >>> print(f"{float(jaxloss.RankingSoftmax()(labels, scores, where=where)):.6f}")
    0.464369

The pairwise losses share one core, ``_pairwise``: every pair ``(i, j)`` of valid items with
``y_true[i] > y_true[j]`` contributes ``phi(y_pred[i] - y_pred[j])``, averaged over the list's
pairs; hinge and logistic differ only in ``phi``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option

# Scores of invalid items in ListMLE's tail log-sum-exp: far enough below every valid score that
# exp() of the gap is exactly 0 in float32, yet finite so no inf - inf reaches the gradient.
_FAR_BELOW = 1e4


def _lists(
    loss: str, y_true: ArrayLike, y_pred: ArrayLike, where: ArrayLike | None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Labels and scores with invalid items zeroed (NaN-safe), and the boolean validity."""
    y_true, y_pred = c.match_shapes(loss, y_true, y_pred)
    y_true = jnp.broadcast_to(y_true, y_pred.shape)
    if where is None:
        valid = jnp.ones(y_pred.shape, bool)
    else:
        where = c.as_input_array(loss, "where", where)
        if not jnp.issubdtype(where.dtype, jnp.bool_):
            raise TypeError(f"{loss}: `where` must be a boolean array; got dtype {where.dtype}.")
        try:
            valid = jnp.broadcast_to(where, y_pred.shape)
        except ValueError:
            raise ValueError(
                f"{loss}: `where` must broadcast to the shape of `y_pred` {tuple(y_pred.shape)}; "
                f"got shape {tuple(where.shape)}."
            ) from None
    zero = jnp.zeros((), y_pred.dtype)
    return jnp.where(valid, y_true, zero), jnp.where(valid, y_pred, zero), valid


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num), num / safe)


def ranking_softmax(
    y_true: ArrayLike, y_pred: ArrayLike, where: ArrayLike | None = None
) -> jax.Array:
    """Listwise softmax cross-entropy: ``-sum_i y_i log softmax(s)_i`` over each list's valid items.

    ``loss = -sum_i y_true[i] * (y_pred[i] - logsumexp_{j valid} y_pred[j])``; the labels are not
    normalised (optax's ``ranking_softmax_loss``).

    Args:
      y_true: relevance labels ``[..., list_size]`` (>= 0; graded or binary).
      y_pred: scores, same shape.
      where: optional boolean ``[..., list_size]``: the valid items.

    Returns:
      One loss per list, shape ``[...]``.

    Raises:
      TypeError: non-numeric inputs, or a non-boolean ``where``.
      ValueError: shapes that do not match.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.ranking_softmax([[0.0, 1.0, 2.0]], [[1.0, 2.0, 3.0]]))
      [2.2228177]

    Notes:
      A list with no valid item, or with all labels 0, has loss 0 (and a zero gradient).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. Labels are used as weights as given (negative ones too).
    """
    y_true, y_pred, valid = _lists("ranking_softmax", y_true, y_pred, where)
    top = lax.stop_gradient(jnp.max(jnp.where(valid, y_pred, -jnp.inf), axis=-1, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top))
    exp_sum = jnp.sum(jnp.where(valid, jnp.exp(y_pred - top), 0.0), axis=-1, keepdims=True)
    lse = top + jnp.log(jnp.where(exp_sum > 0, exp_sum, jnp.ones_like(exp_sum)))
    return jnp.sum(jnp.where(valid, y_true * (lse - y_pred), 0.0), axis=-1)


def ranking_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduce_fn: Callable[..., Any] | None = jnp.mean,
) -> jax.Array:
    """optax's ``ranking_softmax_loss``: :func:`ranking_softmax` with item weights, ``reduce_fn``.

    ``labels * weights`` are the relevance labels of :func:`ranking_softmax`. ``reduce_fn`` is
    called as ``reduce_fn(losses, where=lists_with_a_valid_item)`` (``where=None`` without
    ``where``); with ``jnp.mean`` an all-masked batch gives 0, not NaN. ``reduce_fn=None`` returns
    the per-list losses with fully masked lists at 0.

    Examples:
      >>> from jaxloss._ranking import ranking_softmax_loss
      >>> print(f"{float(ranking_softmax_loss([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])):.6f}")
      2.222818
    """
    logits = c.as_float(logits, loss="ranking_softmax_loss", arg="logits")
    labels = c.as_input_array("ranking_softmax_loss", "labels", labels).astype(logits.dtype)
    if weights is not None:
        labels = labels * c.as_float(weights, logits.dtype, "ranking_softmax_loss", "weights")
    losses = ranking_softmax(labels, logits, where=where)
    lists = None if where is None else jnp.any(jnp.broadcast_to(where, logits.shape), axis=-1)
    if reduce_fn is None:
        return losses
    out = reduce_fn(losses, where=lists)
    if reduce_fn is jnp.mean:
        out = jnp.where(jnp.isnan(out) & ~jnp.any(jnp.isnan(losses)), 0.0, out)
    return out


def list_mle(y_true: ArrayLike, y_pred: ArrayLike, where: ArrayLike | None = None) -> jax.Array:
    """ListMLE: the negative Plackett-Luce log-likelihood of the order given by the labels.

    With ``pi`` the valid items sorted by decreasing label (ties keep their list order),
    ``loss = -sum_k (y_pred[pi_k] - logsumexp_{m >= k} y_pred[pi_m])``.

    Args:
      y_true: relevance labels ``[..., list_size]``.
      y_pred: scores, same shape.
      where: optional boolean ``[..., list_size]``: the valid items.

    Returns:
      One loss per list, shape ``[...]``.

    Raises:
      TypeError: non-numeric inputs, or a non-boolean ``where``.
      ValueError: shapes that do not match.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.list_mle([[2.0, 0.0, 1.0]], [[1.0, 0.0, 2.0]]))
      [1.5345342]

    Notes:
      Ties are broken by position (a stable sort), not at random as in some implementations.
      A list with at most one valid item has loss 0.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A NaN relevance label is not loud: it only changes the sort order.
    """
    y_true, y_pred, valid = _lists("list_mle", y_true, y_pred, where)
    # Invalid items sort last, so each valid item's tail holds only valid items and the fill.
    key = jnp.where(valid, -y_true, jnp.inf)
    order = jnp.argsort(key, axis=-1, stable=True)
    scores = jnp.take_along_axis(y_pred, order, axis=-1)
    kept = jnp.take_along_axis(valid, order, axis=-1)
    low = lax.stop_gradient(jnp.min(jnp.where(kept, scores, jnp.inf), axis=-1, keepdims=True))
    low = jnp.where(jnp.isfinite(low), low, jnp.zeros_like(low))
    filled = jnp.where(kept, scores, low - _FAR_BELOW)
    tail = lax.cumlogsumexp(filled, axis=filled.ndim - 1, reverse=True)
    return jnp.sum(jnp.where(kept, tail - scores, 0.0), axis=-1)


def _pairs(y_true: jax.Array, valid: jax.Array) -> jax.Array:
    """Boolean ``[..., i, j]``: both items valid and item ``i`` more relevant than item ``j``."""
    both = valid[..., :, None] & valid[..., None, :]
    return both & (y_true[..., :, None] > y_true[..., None, :])


def _pairwise(
    loss: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    where: ArrayLike | None,
    phi: Callable[[jax.Array], jax.Array],
) -> jax.Array:
    """The mean of ``phi(s_i - s_j)`` over each list's ordered pairs (0 without pairs)."""
    y_true, y_pred, valid = _lists(loss, y_true, y_pred, where)
    pairs = _pairs(y_true, valid)
    diff = jnp.where(pairs, y_pred[..., :, None] - y_pred[..., None, :], 0.0)
    total = jnp.sum(jnp.where(pairs, phi(diff), 0.0), axis=(-2, -1))
    return _safe_divide(total, jnp.sum(pairs, axis=(-2, -1)).astype(total.dtype))


def pairwise_hinge(
    y_true: ArrayLike, y_pred: ArrayLike, margin: float = 1.0, where: ArrayLike | None = None
) -> jax.Array:
    """Pairwise hinge: ``mean over pairs y_i > y_j of max(0, margin - (s_i - s_j))``.

    Args:
      y_true: relevance labels ``[..., list_size]``.
      y_pred: scores, same shape.
      margin: the score gap a more relevant item should keep, >= 0.
      where: optional boolean ``[..., list_size]``: the valid items.

    Returns:
      One loss per list, shape ``[...]``.

    Raises:
      TypeError: non-numeric inputs, a non-boolean ``where``, a non-float ``margin``.
      ValueError: shapes that do not match; a negative ``margin``.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.pairwise_hinge([[2.0, 0.0, 1.0]], [[1.0, 0.0, 2.0]]))
      [0.6666667]

    Notes:
      A list without an ordered pair (all labels equal, or fewer than two valid items) has loss 0
      and is left out of the class handle's mean.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A NaN relevance label takes its item out of every pair (comparisons with NaN are
      false); a list left without pairs costs 0.
    """
    margin = c.check_option("pairwise_hinge", "margin", margin, c.NON_NEGATIVE)
    return _pairwise("pairwise_hinge", y_true, y_pred, where, lambda d: jax.nn.relu(margin - d))


def pairwise_logistic(
    y_true: ArrayLike, y_pred: ArrayLike, where: ArrayLike | None = None
) -> jax.Array:
    """Pairwise logistic (RankNet): ``mean over pairs y_i > y_j of log(1 + exp(-(s_i - s_j)))``.

    Args:
      y_true: relevance labels ``[..., list_size]``.
      y_pred: scores, same shape.
      where: optional boolean ``[..., list_size]``: the valid items.

    Returns:
      One loss per list, shape ``[...]``.

    Raises:
      TypeError: non-numeric inputs, or a non-boolean ``where``.
      ValueError: shapes that do not match.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.pairwise_logistic([[2.0, 0.0, 1.0]], [[1.0, 0.0, 2.0]]))
      [0.5844838]

    Notes:
      A list without an ordered pair has loss 0 and is left out of the class handle's mean.

      Bad values: NaN in a sample's ``y_pred`` makes that sample's loss NaN; the other samples are
      exact. A NaN relevance label takes its item out of every pair (comparisons with NaN are
      false); a list left without pairs costs 0.
    """
    return _pairwise("pairwise_logistic", y_true, y_pred, where, lambda d: jax.nn.softplus(-d))


def margin_ranking(y_true: ArrayLike, y_pred: ArrayLike, margin: float = 0.0) -> jax.Array:
    """Margin ranking (torch's ``margin_ranking_loss``): ``max(0, -y (x1 - x2) + margin)``.

    Args:
      y_true: ``y``, +1 where ``x1`` should rank above ``x2`` and -1 where below, shape ``[...]``
        (or ``[..., 1]``).
      y_pred: the two scores stacked on the last axis, ``[..., 2]``: ``x1 = y_pred[..., 0]``,
        ``x2 = y_pred[..., 1]``.
      margin: the required gap (any float; torch's default 0).

    Returns:
      One loss per pair, shape ``[...]`` (torch's ``reduction="none"``); the class handle's
      default mean is torch's ``"mean"``.

    Raises:
      TypeError: non-numeric inputs, a non-float ``margin``.
      ValueError: a last axis of ``y_pred`` other than 2, or shapes that do not match.

    Examples:
      >>> import jaxloss
      >>> print(jaxloss.margin_ranking([1.0, -1.0], [[0.5, 1.0], [0.5, 1.0]], margin=0.1))
      [0.6 0. ]

    Notes:
      ``y_true`` values other than +-1 scale the score gap as in torch (no check).

      Bad values: NaN in a sample's inputs makes that sample's loss NaN; the other samples are
      exact. ``y_true`` values other than +-1 scale the score gap (no check).
    """
    margin = c.check_option("margin_ranking", "margin", margin, c.FINITE)
    y_pred = c.as_float(y_pred, loss="margin_ranking", arg="y_pred")
    if y_pred.ndim < 1 or y_pred.shape[-1] != 2:
        raise ValueError(
            "margin_ranking: `y_pred` must stack the two scores on a last axis of size 2; "
            f"got shape {tuple(y_pred.shape)}."
        )
    y = c.as_input_array("margin_ranking", "y_true", y_true).astype(y_pred.dtype)
    if y.ndim == y_pred.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    try:
        y = jnp.broadcast_to(y, y_pred.shape[:-1])
    except ValueError:
        raise ValueError(
            f"margin_ranking: `y_true` must have shape {tuple(y_pred.shape[:-1])} (the pairs of "
            f"`y_pred`); got shape {tuple(y.shape)}."
        ) from None
    return jax.nn.relu(margin - y * (y_pred[..., 0] - y_pred[..., 1]))


def _valid_lists(where: Any) -> jax.Array | None:
    return None if where is None else jnp.any(where, axis=-1)


class RankingSoftmax(Loss, function=ranking_softmax, inputs="ranking"):
    """Class handle of :func:`ranking_softmax`; ``where`` is a call-time input.

    Lists with no valid item are left out of the mean (optax's reduction).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> labels = jnp.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
      >>> scores = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
      >>> print(f"{float(jaxloss.RankingSoftmax()(labels, scores)):.6f}")
      1.660715
    """

    def mask(
        self, y_true: Any, y_pred: Any, values: jax.Array, where: Any = None, **inputs: Any
    ) -> Any:
        return _valid_lists(where)


class ListMLE(Loss, function=list_mle, aliases=("listmle",), inputs="ranking"):
    """Class handle of :func:`list_mle`; ``where`` is a call-time input.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.ListMLE()([[2.0, 0.0, 1.0]], [[1.0, 0.0, 2.0]])):.6f}")
      1.534534
    """

    def mask(
        self, y_true: Any, y_pred: Any, values: jax.Array, where: Any = None, **inputs: Any
    ) -> Any:
        return _valid_lists(where)


def _lists_with_pairs(y_true: Any, y_pred: Any, where: Any) -> jax.Array:
    """Lists with at least one ordered pair (the others are left out of the mean)."""
    y_true = jnp.broadcast_to(jnp.asarray(y_true), jnp.asarray(y_pred).shape)
    valid = jnp.ones(y_true.shape, bool) if where is None else jnp.broadcast_to(where, y_true.shape)
    return jnp.any(_pairs(y_true, valid), axis=(-2, -1))


class PairwiseHinge(Loss, function=pairwise_hinge, inputs="ranking"):
    """Class handle of :func:`pairwise_hinge`; ``where`` is a call-time input.

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.PairwiseHinge(margin=0.5)
      >>> print(f"{float(loss([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], [[1.0, 0.0, 2.0]] * 2)):.6f}")
      0.500000
    """

    margin: float = option(default=1.0, check=c.NON_NEGATIVE)

    def mask(
        self, y_true: Any, y_pred: Any, values: jax.Array, where: Any = None, **inputs: Any
    ) -> Any:
        return _lists_with_pairs(y_true, y_pred, where)


class PairwiseLogistic(Loss, function=pairwise_logistic, inputs="ranking"):
    """Class handle of :func:`pairwise_logistic`; ``where`` is a call-time input.

    Examples:
      >>> import jaxloss
      >>> print(f"{float(jaxloss.PairwiseLogistic()([[2.0, 0.0, 1.0]], [[1.0, 0.0, 2.0]])):.6f}")
      0.584484
    """

    def mask(
        self, y_true: Any, y_pred: Any, values: jax.Array, where: Any = None, **inputs: Any
    ) -> Any:
        return _lists_with_pairs(y_true, y_pred, where)


class MarginRanking(Loss, function=margin_ranking, inputs="margin_ranking"):
    """Class handle of :func:`margin_ranking` (torch's ``MarginRankingLoss``).

    Examples:
      >>> import jaxloss
      >>> loss = jaxloss.MarginRanking(margin=0.1)
      >>> print(f"{float(loss([1.0, -1.0], [[0.5, 1.0], [0.5, 1.0]])):.2f}")
      0.30
    """

    margin: float = option(default=0.0, check=c.FINITE)
