"""Metric-learning losses: labels ``y_true`` and embeddings ``y_pred [batch, dim]``.

In-batch losses compare every anchor ``y_pred[i]`` with the references ``ref_embeddings``
(``[ref, dim]``, default ``y_pred``) whose labels ``ref_labels`` (default ``y_true``) are equal
(positive pairs) or not (negative pairs); with ``remove_diagonal`` the pair of a sample with
itself is not a positive. They share one core, :func:`_pair_terms`, and differ only in what they
do with its ``(distances, positive, negative)``. Each returns one loss per anchor; the class handles
mask anchors without a positive or a negative pair out of the mean (never NaN), and with
``axis_name`` inside ``shard_map`` they gather the references across devices, so that the loss and
its gradient equal the single-device ones on the global batch. (Passing references gathered by
hand instead, also pass ``anchor_offset``, the row of the references holding ``y_pred[0]``, so that
each sample's pair with itself is recognised.)

Losses on explicit triplets and pairs (PyTorch's conventions) are in ``jaxloss._embedding_pairs``.

>>> import jax.numpy as jnp, jaxloss
>>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
>>> labels = jnp.array([0, 0, 1, 1])
>>> print(f"{float(jaxloss.TripletHard()(labels, emb)):.4f}")
0.4781
>>> print(f"{float(jaxloss.Circle(gamma=2.0)(labels, emb)):.4f}")
0.9337
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops import metric_learning as ops

_DISTANCE_NAMES = ("L2", "squared-L2", "angular")
DISTANCE = c.Check(
    lambda x: isinstance(x, str) or callable(x),
    '"L2", "squared-L2", "angular" or a callable f(embeddings, ref_embeddings) -> [batch, ref]',
    range_ok=lambda x: callable(x) or x in _DISTANCE_NAMES,
)


# ----------------------------------------------------------------------------------------------
# the pair-term core


class PairTerms(NamedTuple):
    """``distances [batch, ref]``, boolean ``positive``/``negative`` masks, ``affinity`` counts."""

    distances: jax.Array
    positive: jax.Array
    negative: jax.Array
    affinity: jax.Array


def _safe_sqrt(x: jax.Array) -> jax.Array:
    # 0 with a zero gradient at 0; `x * 0` rather than 0 keeps a NaN distance NaN.
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), x * 0.0)


def _normalize(x: jax.Array) -> jax.Array:
    return x * lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True), 1e-12))


def _pairwise(distance: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """``[n, m]`` distances between the rows of ``x`` and ``y`` (TFA's definitions)."""
    if callable(distance):
        return jnp.asarray(distance(x, y), x.dtype)
    if distance == "angular":
        return jnp.maximum(1.0 - _normalize(x) @ _normalize(y).T, 0.0)
    sq = jnp.sum(x * x, -1)[:, None] + jnp.sum(y * y, -1)[None, :] - 2.0 * (x @ y.T)
    sq = jnp.maximum(sq, 0.0)
    return sq if distance == "squared-L2" else _safe_sqrt(sq)


def _labels(name: str, arg: str, x: Any, multilabel: bool) -> jax.Array:
    x = c.as_input_array(name, arg, x)
    if multilabel:
        if x.ndim != 2:
            raise ValueError(
                f"{name}: `{arg}` must be multi-hot [batch, classes]; got shape {tuple(x.shape)}."
            )
        return x.astype(jnp.float32)
    c.check_integer(name, arg, x)
    if x.ndim == 2 and x.shape[-1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{name}: `{arg}` must be [batch]; got shape {tuple(x.shape)}.")
    return x


def _embedding_inputs(
    name: str,
    labels: ArrayLike,
    embeddings: ArrayLike,
    ref_labels: ArrayLike | None,
    ref_embeddings: ArrayLike | None,
    multilabel: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Checked ``(labels, embeddings, ref_labels, ref_embeddings)``, references defaulted."""
    emb = c.as_float(embeddings, loss=name, arg="y_pred")
    lab = _labels(name, "y_true", labels, multilabel)
    if emb.ndim != 2 or lab.shape[0] != emb.shape[0]:
        raise ValueError(
            f"{name}: `y_true` must hold one label per row of `y_pred` [batch, dim]; got y_true "
            f"{tuple(lab.shape)} and y_pred {tuple(emb.shape)}."
        )
    ref_emb = emb
    if ref_embeddings is not None:
        ref_emb = c.as_float(ref_embeddings, emb.dtype, name, "ref_embeddings")
    ref_lab = lab if ref_labels is None else _labels(name, "ref_labels", ref_labels, multilabel)
    if ref_emb.ndim != 2 or ref_emb.shape != (ref_lab.shape[0], emb.shape[1]):
        raise ValueError(
            f"{name}: `ref_embeddings` must be [ref, {emb.shape[1]}] with one `ref_labels` entry "
            f"per row; got {tuple(ref_emb.shape)} and {tuple(ref_lab.shape)}."
        )
    return lab, emb, ref_lab, ref_emb


def _pair_terms(
    name: str,
    labels: ArrayLike,
    embeddings: ArrayLike,
    ref_labels: ArrayLike | None,
    ref_embeddings: ArrayLike | None,
    distance: Any,
    remove_diagonal: bool,
    anchor_offset: int | jax.Array | None = None,
    multilabel: bool = False,
) -> PairTerms:
    """Distances from each anchor to each reference and which pairs are positive / negative.

    ``anchor_offset`` is the row of the references holding ``embeddings[0]`` (the device's offset
    when they are gathered across devices; ``None``: 0). With ``remove_diagonal`` the pairs
    ``(i, i + anchor_offset)`` are not positives (Keras' Circle rule, also for separate references)
    and, when the references hold the anchors, their distance is exactly 0.
    """
    lab, emb, ref_lab, ref_emb = _embedding_inputs(
        name, labels, embeddings, ref_labels, ref_embeddings, multilabel
    )
    d = _pairwise(distance, emb, ref_emb)
    offset = 0 if anchor_offset is None else anchor_offset
    rows = lax.broadcasted_iota(jnp.int32, d.shape, 0) + offset
    self_pair = rows == lax.broadcasted_iota(jnp.int32, d.shape, 1)
    if multilabel:
        affinity = lab @ ref_lab.T
        same = affinity > 0
    else:
        same = lab[:, None] == ref_lab[None, :]
        affinity = same.astype(d.dtype)
    positive = same
    if remove_diagonal:
        positive = same & ~self_pair
        affinity = jnp.where(self_pair, 0.0, affinity)
        if distance in ("L2", "squared-L2") and (
            ref_embeddings is None or anchor_offset is not None
        ):
            # A sample's distance to itself is 0 exactly (TFA), not the rounding error of the
            # expanded |x|^2 + |y|^2 - 2xy.
            d = jnp.where(self_pair, 0.0, d)
    return PairTerms(d, positive, ~same, affinity)


def _masked_max(x: jax.Array, mask: jax.Array, fallback: jax.Array) -> jax.Array:
    best = jnp.max(jnp.where(mask, x, -jnp.inf), axis=1, initial=-jnp.inf)
    return jnp.where(jnp.any(mask, 1), best, fallback)


def _masked_min(x: jax.Array, mask: jax.Array, fallback: jax.Array) -> jax.Array:
    best = jnp.min(jnp.where(mask, x, jnp.inf), axis=1, initial=jnp.inf)
    return jnp.where(jnp.any(mask, 1), best, fallback)


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    count = jnp.sum(mask, 1)
    return jnp.sum(jnp.where(mask, x, 0.0), 1) / jnp.maximum(count, 1).astype(x.dtype)


def _masked_logsumexp(x: jax.Array, mask: jax.Array) -> jax.Array:
    """logsumexp over the ``mask``-ed entries of each row; ``-inf`` (zero gradient) where none."""
    m = jnp.max(jnp.where(mask, x, -jnp.inf), axis=1, keepdims=True, initial=-jnp.inf)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    shifted = jnp.where(mask, x - m, 0.0)
    # Under jit XLA recomputes `x` inside this fusion and may contract the product that made it
    # with the subtraction (one FMA): `x - m` of the largest entry is then the product's rounding
    # error (hundreds once |x| ~ 1e10), not 0, and exp turns it into 0 or inf. Entries within a
    # few ulps of the maximum are ties at 0; the identity `shifted - stop_gradient(shifted)`
    # keeps their derivative.
    ties = jnp.abs(shifted) <= 8.0 * jnp.finfo(x.dtype).eps * jnp.abs(m)
    shifted = jnp.where(ties, shifted - lax.stop_gradient(shifted), shifted)
    s = jnp.sum(jnp.where(mask, jnp.exp(shifted), 0.0), axis=1)
    # A NaN among the entries stays NaN (a broken embedding must be loud, not a silent 0).
    empty = jnp.where(jnp.isnan(s), jnp.nan, -jnp.inf)
    return jnp.where(s > 0, m[:, 0] + jnp.log(jnp.where(s > 0, s, 1.0)), empty)


# ----------------------------------------------------------------------------------------------
# class handles: references gathered across devices, anchors without pairs masked out


class _InBatch(Loss):
    """Shared ``call``/``mask`` of the in-batch losses (no ``function``: not registered)."""

    # What an anchor needs to count in the mean: a "positive", a "negative", both, or any "pair".
    _needs: ClassVar[tuple[str, ...]] = ("positive", "negative")
    _multilabel = False

    def _references(self, y_true: Any, y_pred: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        if self.axis_name is None or inputs.get("ref_embeddings") is not None:
            return inputs
        # Inside shard_map every device holds a slice of the batch: its anchors meet the global
        # batch, and all_gather's transpose returns each device its share of the gradient.
        gather = lambda x: lax.all_gather(x, self.axis_name, tiled=True)
        offset = lax.axis_index(self.axis_name) * jnp.shape(y_pred)[0]
        refs = {"ref_labels": gather(y_true), "ref_embeddings": gather(y_pred)}
        return {**inputs, **refs, "anchor_offset": offset}

    def call(self, y_true: Any, y_pred: Any, **inputs: Any) -> jax.Array:
        inputs = self._references(y_true, y_pred, inputs)
        return self.function(y_true, y_pred, **self.options(), **inputs)  # type: ignore[misc]

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> jax.Array:
        inputs = self._references(y_true, y_pred, inputs)
        owner = type(self).__name__
        lab = _labels(owner, "y_true", y_true, self._multilabel)
        ref = inputs.get("ref_labels")
        ref = lab if ref is None else _labels(owner, "ref_labels", ref, self._multilabel)
        same = (lab @ ref.T > 0) if self._multilabel else lab[:, None] == ref[None, :]
        if getattr(self, "remove_diagonal", True):
            offset = inputs.get("anchor_offset")
            offset = 0 if offset is None else offset
            rows = lax.broadcasted_iota(jnp.int32, same.shape, 0) + offset
            self_pair = rows == lax.broadcasted_iota(jnp.int32, same.shape, 1)
            positive = same & ~self_pair
        else:
            positive = same
        valid = jnp.ones(values.shape, bool)
        if "positive" in self._needs:
            valid &= jnp.any(positive, 1)
        if "negative" in self._needs:
            valid &= jnp.any(~same, 1)
        if "pair" in self._needs:
            valid &= jnp.any(positive | ~same, 1)
        return valid


# ----------------------------------------------------------------------------------------------
# triplets with in-batch mining (TFA semantics)


def triplet_hard(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    margin: float = 1.0,
    soft: bool = False,
    distance_metric: str | Callable[..., Any] = "L2",
    remove_diagonal: bool = True,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """Batch-hard triplet loss (Hermans et al., 2017), TensorFlow Addons' ``triplet_hard_loss``.

    For each anchor, the hardest positive ``d_p = max_{positives} d`` and the hardest negative
    ``d_n = min_{negatives} d``::

        loss = max(d_p - d_n + margin, 0)        (soft: log(1 + exp(d_p - d_n)))

    Args:
      y_true: integer labels ``[batch]``.
      y_pred: embeddings ``[batch, dim]`` (TFA expects them L2-normalised).
      ref_labels, ref_embeddings: the references (default ``y_true``, ``y_pred``).
      margin: the margin (ignored when ``soft``).
      soft: use the soft-margin ``softplus`` form.
      distance_metric: ``"L2"``, ``"squared-L2"``, ``"angular"`` (``1 - cosine``) or a callable
        ``f(embeddings, ref_embeddings) -> [batch, ref]`` (TFA's takes the embeddings alone). A
        callable makes the class handle's config unserialisable to JSON.
      remove_diagonal: a sample is not its own positive.
      anchor_offset: the row of the references holding ``y_pred[0]`` (keyword only).

    Returns:
      ``[batch]`` per-anchor losses.

    Raises:
      TypeError: non-integer labels or a bad option kind. ValueError: shapes or option values.

    Notes:
      An anchor without a positive uses the smallest distance of its row, one without a negative
      the largest (what TFA's masked max/min give), so the mean of this function is TFA's loss;
      the class handle :class:`TripletHard` instead leaves such anchors out of the mean.

      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids.

    Examples:
      TensorFlow Addons' documented example (two samples of one class: no negatives):

      >>> import jax.numpy as jnp, jaxloss
      >>> y_true, y_pred = jnp.array([0, 0]), jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> print(jaxloss.triplet_hard(y_true, y_pred).mean())
      1.0
      >>> print(jaxloss.triplet_hard(y_true, y_pred, distance_metric=lambda x, y: x @ y.T).mean())
      0.0
    """
    name = "triplet_hard"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    soft = c.check_option(name, "soft", soft, c.BOOL)
    distance_metric = c.check_option(name, "distance_metric", distance_metric, DISTANCE)
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    d, pos, neg, _ = _pair_terms(
        name,
        y_true,
        y_pred,
        ref_labels,
        ref_embeddings,
        distance_metric,
        remove_diagonal,
        anchor_offset,
    )
    hardest_pos = _masked_max(d, pos, jnp.min(d, 1, initial=jnp.inf))
    hardest_neg = _masked_min(d, neg, jnp.max(d, 1, initial=-jnp.inf))
    gap = hardest_pos - hardest_neg
    return jax.nn.softplus(gap) if soft else jnp.maximum(gap + margin, 0.0)


class TripletHard(
    _InBatch, Loss, function=triplet_hard, aliases=("triplet_hard_loss",), inputs="metric_learning"
):
    """Class handle of :func:`triplet_hard`; anchors without a positive or a negative are masked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(f"{float(jaxloss.TripletHard(margin=0.5)(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      0.1190
    """

    margin: float = option(default=1.0, check=c.FINITE)
    soft: bool = option(default=False, check=c.BOOL)
    distance_metric: Any = option(default="L2", check=DISTANCE)
    remove_diagonal: bool = option(default=True, check=c.BOOL)


def triplet_semihard(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    margin: float = 1.0,
    distance_metric: str | Callable[..., Any] = "L2",
    remove_diagonal: bool = True,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """Semi-hard triplet loss (Schroff et al., 2015), TensorFlow Addons' ``triplet_semihard_loss``.

    For each positive pair ``(a, p)`` the negative is the closest one farther than ``d(a, p)``
    (semi-hard); if there is none, the farthest negative of ``a``::

        loss(a) = mean over positives p of max(margin + d(a, p) - d(a, n(a, p)), 0)

    Args:
      y_true, y_pred, ref_labels, ref_embeddings, margin, distance_metric, remove_diagonal,
      anchor_offset: as for :func:`triplet_hard`.

    Returns:
      ``[batch]`` per-anchor losses (0 for an anchor without positives).

    Raises:
      TypeError, ValueError: as for :func:`triplet_hard`.

    Notes:
      TFA averages over all positive pairs of the batch; this is the mean per anchor, so the two
      agree when every anchor has as many positives (balanced batches). An anchor without
      negatives uses the smallest distance of its row (TFA's fallback); the class handle masks it.
      The semi-hard negative is found by a sorted search, ``O(batch * ref * log ref)``, not with
      TFA's ``[batch, batch, batch]`` tensor.

      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids.

    Examples:
      TensorFlow Addons' documented example:

      >>> import jax.numpy as jnp, jaxloss
      >>> y_true, y_pred = jnp.array([0, 0]), jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> print(f"{float(jaxloss.triplet_semihard(y_true, y_pred).mean()):.7f}")
      2.4142137
      >>> dot = lambda x, y: x @ y.T
      >>> print(jaxloss.triplet_semihard(y_true, y_pred, distance_metric=dot).mean())
      1.0
    """
    name = "triplet_semihard"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    distance_metric = c.check_option(name, "distance_metric", distance_metric, DISTANCE)
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    d, pos, neg, _ = _pair_terms(
        name,
        y_true,
        y_pred,
        ref_labels,
        ref_embeddings,
        distance_metric,
        remove_diagonal,
        anchor_offset,
    )
    neg_sorted = jnp.sort(jnp.where(neg, d, jnp.inf), axis=1)
    # index of the first negative strictly farther than each positive distance
    idx = jax.vmap(lambda row, q: jnp.searchsorted(row, q, side="right"))(neg_sorted, d)
    has_semihard = idx < jnp.sum(neg, 1, keepdims=True)
    outside = jnp.take_along_axis(neg_sorted, jnp.minimum(idx, d.shape[1] - 1), axis=1)
    inside = _masked_max(d, neg, jnp.min(d, 1, initial=jnp.inf))
    negative = jnp.where(has_semihard, outside, inside[:, None])
    return _masked_mean(jnp.maximum(margin + d - negative, 0.0), pos)


class TripletSemiHard(
    _InBatch,
    Loss,
    function=triplet_semihard,
    aliases=("triplet_semihard_loss",),
    inputs="metric_learning",
):
    """Class handle of :func:`triplet_semihard`; anchors lacking a positive or negative are masked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(f"{float(jaxloss.TripletSemiHard()(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      0.4781
    """

    margin: float = option(default=1.0, check=c.FINITE)
    distance_metric: Any = option(default="L2", check=DISTANCE)
    remove_diagonal: bool = option(default=True, check=c.BOOL)


# ----------------------------------------------------------------------------------------------
# pair losses over the same core


def contrastive(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    margin: float = 1.0,
    distance_metric: str | Callable[..., Any] = "L2",
    remove_diagonal: bool = True,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """Contrastive loss (Hadsell et al., 2006) over every pair of an anchor with the references.

    With pair distance ``d`` (TensorFlow Addons' ``contrastive_loss`` on each pair)::

        pair loss = d^2 (positive pair),  max(margin - d, 0)^2 (negative pair)
        loss(a)   = mean over the anchor's pairs

    Args:
      y_true, y_pred, ref_labels, ref_embeddings, distance_metric, remove_diagonal,
      anchor_offset: as for :func:`triplet_hard`.
      margin: the distance beyond which negative pairs cost nothing.

    Returns:
      ``[batch]`` per-anchor losses (0 for an anchor without pairs).

    Raises:
      TypeError, ValueError: as for :func:`triplet_hard`.

    Notes:
      Every anchor has the same number of pairs, so the mean of this function is TFA's mean over
      the batch's pair distances.

      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> emb = jnp.array([[0.0, 0.0], [0.3, 0.4], [2.0, 0.0]])
      >>> print(np.asarray(jaxloss.contrastive(jnp.array([0, 0, 1]), emb)).round(4))
      [0.125 0.125 0.   ]
    """
    name = "contrastive"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    distance_metric = c.check_option(name, "distance_metric", distance_metric, DISTANCE)
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    d, pos, neg, _ = _pair_terms(
        name,
        y_true,
        y_pred,
        ref_labels,
        ref_embeddings,
        distance_metric,
        remove_diagonal,
        anchor_offset,
    )
    pair = jnp.where(pos, jnp.square(d), jnp.square(jnp.maximum(margin - d, 0.0)))
    return _masked_mean(pair, pos | neg)


class Contrastive(
    _InBatch, Loss, function=contrastive, aliases=("contrastive_loss",), inputs="metric_learning"
):
    """Class handle of :func:`contrastive`; anchors without any pair are masked out of the mean.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[0.0, 0.0], [0.3, 0.4], [2.0, 0.0]])
      >>> print(f"{float(jaxloss.Contrastive()(jnp.array([0, 0, 1]), emb)):.4f}")
      0.0833
    """

    _needs = ("pair",)
    margin: float = option(default=1.0, check=c.FINITE)
    distance_metric: Any = option(default="L2", check=DISTANCE)
    remove_diagonal: bool = option(default=True, check=c.BOOL)


def lifted_struct(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    margin: float = 1.0,
    distance_metric: str | Callable[..., Any] = "L2",
    remove_diagonal: bool = True,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """Lifted structured loss (Oh Song et al., 2016), TensorFlow Addons' ``lifted_struct_loss``.

    For a positive pair ``(i, j)``, with ``N(k)`` the negatives of ``k``::

        J_ij  = log(sum_{n in N(i)} exp(margin - d_in) + sum_{n in N(j)} exp(margin - d_jn)) + d_ij
        loss(i) = mean over positives j of max(J_ij, 0)^2 / 2

    ``N(j)`` of a reference ``j`` is taken among the references.

    Args:
      y_true, y_pred, ref_labels, ref_embeddings, margin, distance_metric, remove_diagonal,
      anchor_offset: as for :func:`triplet_hard`.

    Returns:
      ``[batch]`` per-anchor losses (0 for an anchor without positives).

    Raises:
      TypeError, ValueError: as for :func:`triplet_hard`.

    Notes:
      TFA averages over all positive pairs of the batch; this is the mean per anchor, equal to
      TFA's when every anchor has as many positives. A pair without any negative has ``J = -inf``
      and costs 0.

      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(np.asarray(jaxloss.lifted_struct(jnp.array([0, 0, 1, 1]), emb)).round(4))
      [1.4328 1.4328 1.4328 1.4328]
    """
    name = "lifted_struct"
    margin = c.check_option(name, "margin", margin, c.FINITE)
    distance_metric = c.check_option(name, "distance_metric", distance_metric, DISTANCE)
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    d, pos, neg, _ = _pair_terms(
        name,
        y_true,
        y_pred,
        ref_labels,
        ref_embeddings,
        distance_metric,
        remove_diagonal,
        anchor_offset,
    )
    ref_lab = y_true if ref_labels is None else ref_labels
    ref_emb = y_pred if ref_embeddings is None else ref_embeddings
    d_ref, _, neg_ref, _ = _pair_terms(name, ref_lab, ref_emb, None, None, distance_metric, False)
    lse_a = _masked_logsumexp(margin - d, neg)[:, None]
    lse_r = _masked_logsumexp(margin - d_ref, neg_ref)[None, :]
    none = jnp.isneginf(lse_a) & jnp.isneginf(lse_r)
    both = jnp.logaddexp(jnp.where(none, 0.0, lse_a), jnp.where(none, 0.0, lse_r))
    j = jnp.where(none, -jnp.inf, both) + d
    return _masked_mean(0.5 * jnp.square(jnp.maximum(j, 0.0)), pos)


class LiftedStruct(
    _InBatch,
    Loss,
    function=lifted_struct,
    aliases=("lifted_struct_loss",),
    inputs="metric_learning",
):
    """Class handle of :func:`lifted_struct`; anchors without a positive or a negative are masked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(f"{float(jaxloss.LiftedStruct()(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      1.4328
    """

    margin: float = option(default=1.0, check=c.FINITE)
    distance_metric: Any = option(default="L2", check=DISTANCE)
    remove_diagonal: bool = option(default=True, check=c.BOOL)


def _dot(x: jax.Array, y: jax.Array) -> jax.Array:
    return x @ y.T


def _soft_target_ce(scores: jax.Array, affinity: jax.Array, valid: jax.Array) -> jax.Array:
    """Cross-entropy of the softmax over ``valid`` scores against the row-normalised affinity."""
    total = jnp.sum(affinity, 1)
    target = affinity / jnp.where(total > 0, total, 1.0)[:, None]
    lse = _masked_logsumexp(scores, valid)
    ce = jnp.where(total > 0, lse, 0.0) - jnp.sum(jnp.where(valid, target * scores, 0.0), 1)
    return jnp.where(total > 0, ce, 0.0)


def npairs(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """N-pairs loss (Sohn, 2016), TensorFlow Addons' ``npairs_loss`` on ``y_pred @ ref.T``.

    Each anchor's similarities ``s = y_pred @ ref_embeddings.T`` are logits of a softmax over the
    references; the target spreads evenly over its positives::

        loss(a) = logsumexp_r s_ar - mean over positives p of s_ap

    Args:
      y_true: integer labels ``[batch]``.
      y_pred: anchor embeddings ``[batch, dim]`` (not normalised: the scale is learnt).
      ref_labels, ref_embeddings: the references, e.g. the positive of each anchor
        (default ``y_true``, ``y_pred`` with the self-pair removed).
      remove_diagonal: drop the self-pair from the softmax and the targets. Pass ``False`` with
        ``ref_embeddings`` the positives of the anchors to get TFA's ``npairs_loss``.
      anchor_offset: as for :func:`triplet_hard`.

    Returns:
      ``[batch]`` per-anchor losses (0 for an anchor without positives).

    Raises:
      TypeError, ValueError: as for :func:`triplet_hard`.

    Notes:
      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> anchors = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]) / 10
      >>> positives = jnp.array([[5.0, 9.0], [3.0, 6.0], [1.0, 8.0]]) / 10
      >>> loss = jaxloss.npairs(jnp.array([0, 1, 2]), anchors, jnp.array([0, 1, 2]), positives,
      ...                       remove_diagonal=False)
      >>> print(np.asarray(loss).round(4))
      [1.0525 1.1686 1.187 ]
    """
    name = "npairs"
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    s, pos, neg, affinity = _pair_terms(
        name, y_true, y_pred, ref_labels, ref_embeddings, _dot, remove_diagonal, anchor_offset
    )
    return _soft_target_ce(s, affinity, pos | neg)


class Npairs(_InBatch, Loss, function=npairs, aliases=("npairs_loss",), inputs="metric_learning"):
    """Class handle of :func:`npairs`; anchors without a positive are masked out of the mean.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(f"{float(jaxloss.Npairs()(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      0.6736
    """

    _needs = ("positive",)
    remove_diagonal: bool = option(default=True, check=c.BOOL)


def npairs_multilabel(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """Multi-label N-pairs, TFA's ``npairs_multilabel_loss`` on ``y_pred @ ref.T``.

    As :func:`npairs`, with multi-hot labels ``y_true [batch, classes]``: the target of anchor
    ``i`` on reference ``j`` is the number of labels they share, normalised over the row.

    Args:
      y_true: multi-hot labels ``[batch, classes]``.
      y_pred, ref_embeddings, remove_diagonal, anchor_offset: as for :func:`npairs`.
      ref_labels: multi-hot labels of the references (default ``y_true``).

    Returns:
      ``[batch]`` per-anchor losses (0 for an anchor that shares no label with any reference).

    Raises:
      TypeError, ValueError: as for :func:`npairs`.

    Notes:
      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Multi-hot entries are used as affinity weights as given
      (not checked to be 0 or 1).

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> labels = jnp.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]])
      >>> a = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]) / 10
      >>> b = jnp.array([[5.0, 9.0], [3.0, 6.0], [1.0, 8.0]]) / 10
      >>> loss = jaxloss.npairs_multilabel(labels, a, labels, b, remove_diagonal=False)
      >>> print(np.asarray(loss).round(4))
      [1.0875 1.1086 1.057 ]
    """
    name = "npairs_multilabel"
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    s, pos, neg, affinity = _pair_terms(
        name,
        y_true,
        y_pred,
        ref_labels,
        ref_embeddings,
        _dot,
        remove_diagonal,
        anchor_offset,
        multilabel=True,
    )
    return _soft_target_ce(s, affinity, pos | neg)


class NpairsMultilabel(
    _InBatch,
    Loss,
    function=npairs_multilabel,
    aliases=("npairs_multilabel_loss",),
    inputs="multilabel_embeddings",
):
    """Class handle of :func:`npairs_multilabel`; anchors without a positive are masked out.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> labels = jnp.array([[1, 0], [1, 1], [0, 1]])
      >>> emb = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
      >>> print(f"{float(jaxloss.NpairsMultilabel()(labels, emb)):.4f}")
      0.5022
    """

    _needs = ("positive",)
    _multilabel = True
    remove_diagonal: bool = option(default=True, check=c.BOOL)


def ntxent(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    temperature: float = 0.07,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """NT-Xent / InfoNCE (Chen et al., 2020) per anchor, on optax's ``ntxent`` pair terms.

    With cosine similarities ``s = cos(y_pred_i, ref_j) / temperature``, each positive pair
    ``(i, j)`` costs ``-log(exp(s_ij) / (exp(s_ij) + sum_{negatives n of i} exp(s_in)))``::

        loss(i) = mean over the positives j of i of that term

    Args:
      y_true: integer labels ``[batch]``.
      y_pred: embeddings ``[batch, dim]`` (normalised inside).
      ref_labels, ref_embeddings, anchor_offset: as for :func:`triplet_hard`; the self-pair is
        never a positive.
      temperature: the softmax temperature (> 0).

    Returns:
      ``[batch]`` per-anchor losses (0 for an anchor without positives).

    Raises:
      TypeError, ValueError: as for :func:`triplet_hard`.

    Notes:
      optax's ``ntxent`` returns one mean over all positive pairs of the batch (see
      :func:`jaxloss.ops.metric_learning.ntxent`); the mean of this function equals it when every
      anchor has as many positives (e.g. two views per sample).

      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> loss = jaxloss.ntxent(jnp.array([0, 0, 1, 1]), emb, temperature=1.0)
      >>> print(np.asarray(loss).round(4))
      [0.5282 0.8189 0.8189 0.5282]
    """
    name = "ntxent"
    temperature = c.check_option(name, "temperature", temperature, c.POSITIVE)
    lab, emb, ref_lab, ref_emb = _embedding_inputs(name, y_true, y_pred, ref_labels, ref_embeddings)
    offset = 0 if anchor_offset is None else anchor_offset
    terms, positive = ops.ntxent_pair_terms(emb, lab, ref_emb, ref_lab, temperature, offset)
    return _masked_mean(terms, positive)


class NTXent(
    _InBatch, Loss, function=ntxent, aliases=("nt_xent", "info_nce"), inputs="metric_learning"
):
    """Class handle of :func:`ntxent`; anchors without a positive or a negative are masked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(f"{float(jaxloss.NTXent(temperature=1.0)(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      0.6736
    """

    temperature: float = option(default=0.07, check=c.POSITIVE)


def _circle_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    # Keras' Circle takes the embeddings as normalised and does not normalise them again.
    return jnp.maximum(1.0 - x @ y.T, 0.0)


def circle(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    gamma: float = 80.0,
    margin: float = 0.4,
    *,
    anchor_offset: int | jax.Array | None = None,
) -> jax.Array:
    """Circle loss (Sun et al., 2020) between integer labels and L2-normalised embeddings.

    With cosine distances ``d = max(1 - y_pred @ ref_embeddings.T, 0)``::

        p_loss = logsumexp(-gamma * max(margin + d, 0) * (margin - d))      over positives
        n_loss = logsumexp(gamma * max(1 + margin - d, 0) * (1 - margin - d)) over negatives
        loss   = softplus(p_loss + n_loss)

    Args:
      y_true: integer labels ``[batch]``.
      y_pred: L2-normalised embeddings ``[batch, dim]``.
      ref_labels, ref_embeddings: the references (default ``y_true``, ``y_pred``).
      remove_diagonal: drop self-similarities from the positive pairs.
      gamma: scale of the similarity scores (> 0).
      margin: relaxation margin.
      anchor_offset: as for :func:`triplet_hard`.

    Returns:
      ``[batch]`` per-sample losses; 0 for a sample without positive or negative pairs (the class
      handle masks those out of the mean, as Keras does).

    Raises:
      TypeError: non-integer labels. ValueError: shapes that do not line up.

    Notes:
      Bad values: NaN in one embedding makes the loss NaN for every anchor that meets it (all of
      them in one batch), never a silent 0. Labels are only compared for equality: any integers,
      negative ones too, are class ids. Embeddings are taken as L2-normalised and not normalised
      again: with larger norms the similarities leave ``[-1, 1]`` and the loss grows quadratically,
      exact in float32 (eagerly and under ``jit``) while it fits the dtype.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(np.asarray(jaxloss.circle(jnp.array([0, 0, 1, 1]), emb, gamma=2.0)).round(4))
      [0.8577 1.0097 1.0097 0.8577]
    """
    name = "circle"
    remove_diagonal = c.check_option(name, "remove_diagonal", remove_diagonal, c.BOOL)
    gamma = c.check_option(name, "gamma", gamma, c.POSITIVE)
    margin = c.check_option(name, "margin", margin, c.FINITE)
    d, pos, neg, _ = _pair_terms(
        name,
        y_true,
        y_pred,
        ref_labels,
        ref_embeddings,
        _circle_distance,
        remove_diagonal,
        anchor_offset,
    )
    pos_w = jnp.maximum(jnp.where(pos, margin + d, 0.0), 0.0)
    neg_w = jnp.maximum(jnp.where(neg, 1.0 + margin - d, 0.0), 0.0)
    p_loss = _masked_logsumexp(-gamma * pos_w * (margin - d), pos)
    n_loss = _masked_logsumexp(gamma * neg_w * (1.0 - margin - d), neg)
    return jax.nn.softplus(p_loss + n_loss)


class Circle(_InBatch, Loss, function=circle, inputs="metric_learning"):
    """Class handle of :func:`circle`.

    As in Keras, samples without a positive or a negative pair are masked out of the mean
    reductions. Reference embeddings can be passed at call time:
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

    gamma: float = option(default=80.0, check=c.POSITIVE)
    margin: float = option(default=0.4, check=c.FINITE)
    remove_diagonal: bool = option(default=True, check=c.BOOL)
