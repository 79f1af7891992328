"""The losses of ``torch.nn.functional`` on JAX arrays: same names, signatures and semantics.

Port a PyTorch recipe by replacing ``import torch.nn.functional as F`` with
``from jaxloss.compat import torch as F`` (for the losses). Class dimension 1, ``reduction=``
``"none" | "mean" | "sum"`` (and the legacy ``size_average``/``reduce`` flags), ``ignore_index``,
class ``weight`` and ``label_smoothing`` behave as in torch 2.13. Every function only moves
arguments around and reduces; the per-element values come from a jaxloss kernel
(:mod:`jaxloss.ops`) or loss function. PyTorch is not imported.

Where torch is inconsistent, the behaviour copied is torch's own, for identical numbers:

* ``cross_entropy`` / ``nll_loss`` with ``reduction="mean"`` divide by the summed weights of the
  non-ignored targets, so a batch whose targets are all ignored gives ``NaN`` (0 / 0), while
  ``"sum"`` gives 0. With probability targets ``"mean"`` divides by the element count, weights or
  not. With ``label_smoothing`` and ``weight`` the smoothing term is ``sum_c w_c (-log p_c) / C``
  (not scaled by the target's weight), as torch computes it.
* ``multi_margin_loss`` multiplies the powered violation by the weight (torch's kernel; its
  documentation puts the weight inside the power).
* ``kl_div`` with ``"mean"`` divides by the element count (torch warns and suggests
  ``"batchmean"``, which divides by ``input.shape[0]``).
* ``gaussian_nll_loss`` clamps the variance at ``eps`` for the value while its gradient passes
  through the clamp.
* ``ctc_loss`` with ``"mean"`` divides each loss by its target length (at least 1) before the
  batch mean.

Departures, each where torch's behaviour cannot be had under ``jit`` or is a defect:

* Value errors torch raises on the host (a class index out of range, a negative variance) cannot
  be raised under ``jit``: an out-of-range index gives ``NaN`` for its element, a negative variance
  is clamped at ``eps``.
* ``binary_cross_entropy`` clips probabilities to ``[1e-7, 1 - 1e-7]`` (Keras' rule, via
  :func:`jaxloss.binary_crossentropy`) instead of clamping the log at ``-100``: identical except
  for probabilities within ``1e-7`` of 0 or 1, where an element's loss is at most ~16.1, not 100.
* ``soft_margin_loss``: a target array whose entries are all 0 or 1 is read as ``{-1, 1}`` (the
  hinge rule of :func:`jaxloss.soft_margin`); torch's ``{-1, 1}`` targets give torch's values.
* ``ctc_loss`` log-softmaxes its input first: a no-op for log-probabilities, as torch requires.
  Concatenated 1-D targets need concrete (not traced) ``target_lengths``.
* ``linear_cross_entropy`` takes a 2-D ``linear_weight`` ``[C, in_features]`` (no K-dimensional
  ``out_features``); ``options`` (torch's chunking settings) is accepted and unused. The fused
  kernel serves class-index targets without ``weight``; other cases build the logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxloss import (
    _crossentropy,
    _embedding_pairs,
    _likelihood,
    _margin,
    _ranking,
    _regression,
    ops,
)
from jaxloss.ops import metric_learning as _metric_ops

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cross_entropy",
    "ctc_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "linear_cross_entropy",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

_REDUCTIONS = ("none", "mean", "sum")


# --- argument plumbing ---


def _reduction(name: str, reduction: str, size_average: Any = None, reduce: Any = None) -> str:
    """torch's rule: the legacy flags, when given, override ``reduction``."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "mean" if size_average and reduce else "sum" if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{name}: `reduction` must be one of 'none', 'mean', 'sum'; got {reduction!r}."
        )
    return reduction


def _reduce(loss: jax.Array, reduction: str, weight: Any = None) -> jax.Array:
    if weight is not None:
        loss = loss * jnp.asarray(weight)
    if reduction == "mean":
        return jnp.mean(loss)
    return jnp.sum(loss) if reduction == "sum" else loss


def _elementwise(fn: Callable[..., jax.Array], target, input, **options) -> jax.Array:
    """Call a last-axis-mean loss elementwise: each element becomes its own length-1 row."""
    target, input = jnp.broadcast_arrays(jnp.asarray(target), jnp.asarray(input))
    return fn(target[..., None], input[..., None], **options)


def _batched(fn: Callable[..., jax.Array], target, input, **options) -> jax.Array:
    """Call a ``[N, C]`` loss on torch's unbatched ``[C]`` input too."""
    input = jnp.asarray(input)
    if input.ndim == 1:
        return fn(jnp.asarray(target)[None], input[None], **options)[0]
    return fn(target, input, **options)


def _class_axis(input: jax.Array) -> int:
    return 1 if input.ndim >= 2 else 0


def _class_shape(input: jax.Array, axis: int) -> tuple[int, ...]:
    return tuple(-1 if d == axis else 1 for d in range(input.ndim))


def _weighted_mean(loss: jax.Array, target: jax.Array, ignore_index: int, weight: Any):
    """torch's mean for class-index targets: the summed weights of the non-ignored targets."""
    valid = target != ignore_index
    if weight is None:
        return jnp.sum(loss) / jnp.sum(valid)
    weight = jnp.asarray(weight)
    picked = jnp.take(weight, jnp.clip(target, 0, weight.shape[0] - 1))
    return jnp.sum(loss) / jnp.sum(jnp.where(valid, picked, 0.0))


# --- classification ---


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> jax.Array:
    """``torch.nn.functional.cross_entropy`` over the fused sparse and dense softmax CE kernels.

    ``input`` holds logits ``[N, C, d1, ..]`` (or ``[C]``); ``target`` holds class indices
    ``[N, d1, ..]`` (integer dtype) or class probabilities of ``input``'s shape (float dtype).

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> print(np.asarray(F.cross_entropy(logits, jnp.array([0, 1]), reduction="none")).round(4))
      [0.2761 2.9518]
      >>> print(f"{float(F.cross_entropy(logits, jnp.array([0, -100]))):.4f}")  # ignored row
      0.2761
    """
    name = "cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    input, target = jnp.asarray(input), jnp.asarray(target)
    axis = _class_axis(input)
    num_classes = input.shape[axis]
    if jnp.issubdtype(target.dtype, jnp.floating):
        if weight is None:
            loss = ops.softmax_cross_entropy(
                input, target, axis=axis, label_smoothing=label_smoothing
            )
        else:
            smoothed = target * (1.0 - label_smoothing) + label_smoothing / num_classes
            weighted = smoothed * jnp.asarray(weight).reshape(_class_shape(input, axis))
            loss = ops.softmax_cross_entropy(input, weighted, axis=axis)
        return _reduce(loss, reduction)
    if weight is None or not label_smoothing:
        loss = ops.sparse_softmax_cross_entropy(
            input,
            target,
            axis=axis,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            class_weight=None if weight is None else jnp.asarray(weight),
        )
    else:
        w = jnp.asarray(weight)
        nll = ops.sparse_softmax_cross_entropy(
            input, target, axis=axis, ignore_index=ignore_index, class_weight=w
        )
        class_weights = jnp.broadcast_to(w.reshape(_class_shape(input, axis)), input.shape)
        smooth = ops.softmax_cross_entropy(input, class_weights, axis=axis)
        smooth = jnp.where(target == ignore_index, 0.0, smooth)
        loss = (1.0 - label_smoothing) * nll + (label_smoothing / num_classes) * smooth
    if reduction == "mean":
        return _weighted_mean(loss, target, ignore_index, weight)
    return _reduce(loss, reduction)


def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.nll_loss`` over :func:`jaxloss.negative_log_likelihood`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> log_p = jnp.log(jnp.array([[0.5, 0.5], [0.25, 0.75]]))
      >>> print(f"{float(F.nll_loss(log_p, jnp.array([0, 1]))):.4f}")
      0.4904
    """
    reduction = _reduction("nll_loss", reduction, size_average, reduce)
    input, target = jnp.asarray(input), jnp.asarray(target)
    loss = _likelihood.negative_log_likelihood(
        target,
        input,
        axis=_class_axis(input),
        ignore_class=ignore_index,
        class_weight=None if weight is None else jnp.asarray(weight),
    )
    if reduction == "mean":
        return _weighted_mean(loss, target, ignore_index, weight)
    return _reduce(loss, reduction)


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.binary_cross_entropy`` over :func:`jaxloss.binary_crossentropy`.

    See the module docstring for the probability clip.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> p, t = jnp.array([0.8, 0.4]), jnp.array([1.0, 0.0])
      >>> print(np.asarray(F.binary_cross_entropy(p, t, reduction="none")).round(4))
      [0.2231 0.5108]
    """
    reduction = _reduction("binary_cross_entropy", reduction, size_average, reduce)
    loss = _elementwise(_crossentropy.binary_crossentropy, target, input)
    return _reduce(loss, reduction, weight)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: ArrayLike | None = None,
) -> jax.Array:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` over the fused sigmoid CE kernel.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> x, t = jnp.array([[0.0, 2.0]]), jnp.array([[1.0, 0.0]])
      >>> print(np.asarray(F.binary_cross_entropy_with_logits(
      ...     x, t, pos_weight=jnp.array([2.0, 1.0]), reduction="none")).round(4))
      [[1.3863 2.1269]]
    """
    reduction = _reduction("binary_cross_entropy_with_logits", reduction, size_average, reduce)
    input = jnp.asarray(input)
    target = jnp.broadcast_to(jnp.asarray(target), input.shape)
    loss = ops.sigmoid_binary_cross_entropy(input, target, pos_weight=pos_weight)
    return _reduce(loss, reduction, weight)


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> jax.Array:
    """``torch.nn.functional.kl_div`` over :func:`jaxloss.log_kl_divergence` (``input`` = log p).

    ``reduction="batchmean"`` divides the sum by ``input.shape[0]`` (the KL divergence per sample).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> log_p, t = jnp.log(jnp.array([[0.25, 0.75]])), jnp.array([[0.5, 0.5]])
      >>> print(f"{float(F.kl_div(log_p, t, reduction='batchmean')):.4f}")
      0.1438
    """
    if reduction == "batchmean" and size_average is None and reduce is None:
        loss = _elementwise(_likelihood.log_kl_divergence, target, input, log_target=log_target)
        return jnp.sum(loss) / (loss.shape[0] if loss.ndim else 1)
    reduction = _reduction("kl_div", reduction, size_average, reduce)
    loss = _elementwise(_likelihood.log_kl_divergence, target, input, log_target=log_target)
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.poisson_nll_loss`` over :func:`jaxloss.poisson_nll`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> print(F.poisson_nll_loss(jnp.array([0.0, 0.0]), jnp.array([2.0, 0.0])))
      1.0
    """
    reduction = _reduction("poisson_nll_loss", reduction, size_average, reduce)
    loss = _elementwise(
        _likelihood.poisson_nll, target, input, log_input=log_input, full=full, eps=eps
    )
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.gaussian_nll_loss`` over :func:`jaxloss.gaussian_nll`.

    ``var``: the shape of ``input``, that shape without its last axis or with a 1 there (one
    variance per sample), or a scalar.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> mean, target = jnp.array([[0.0, 2.0]]), jnp.array([[1.0, 2.0]])
      >>> print(np.asarray(F.gaussian_nll_loss(mean, target, jnp.array([[4.0, 1.0]]),
      ...                                      reduction="none")).round(4))
      [[0.8181 0.    ]]
    """
    name = "gaussian_nll_loss"
    reduction = _reduction(name, reduction)
    input = jnp.asarray(input)
    var = jnp.asarray(var, input.dtype if jnp.issubdtype(input.dtype, jnp.floating) else None)
    shape = input.shape
    if var.ndim and var.shape == shape[:-1] and var.shape != shape:
        var = var[..., None]
    elif not (var.ndim == 0 or var.shape == shape or var.shape == (*shape[:-1], 1)):
        raise ValueError(
            f"{name}: `var` must have the shape of `input` {shape}, that shape without its last "
            f"axis, with a 1 there, or no shape; got {var.shape}."
        )
    var = jnp.broadcast_to(var, shape)
    target = jnp.broadcast_to(jnp.asarray(target), shape)
    loss = _likelihood.gaussian_nll(
        target[..., None], input[..., None], var=var[..., None], full=full, eps=eps
    )
    return _reduce(loss, reduction)


def soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.soft_margin_loss`` over :func:`jaxloss.soft_margin`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> print(f"{float(F.soft_margin_loss(jnp.array([0.0, 2.0]), jnp.array([1.0, -1.0]))):.4f}")
      1.4100
    """
    reduction = _reduction("soft_margin_loss", reduction, size_average, reduce)
    return _reduce(_elementwise(_margin.soft_margin, target, input), reduction)


def multilabel_soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.multilabel_soft_margin_loss``: :func:`jaxloss.multilabel_soft_margin`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> loss = F.multilabel_soft_margin_loss(jnp.array([[2.0, -1.0, 0.0]]),
      ...                                      jnp.array([[1.0, 0.0, 1.0]]))
      >>> print(f"{float(loss):.4f}")
      0.3778
    """
    reduction = _reduction("multilabel_soft_margin_loss", reduction, size_average, reduce)
    weight = None if weight is None else jnp.asarray(weight)
    loss = _margin.multilabel_soft_margin(target, input, class_weight=weight)
    return _reduce(loss, reduction)


def multilabel_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.multilabel_margin_loss`` over :func:`jaxloss.multilabel_margin`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> loss = F.multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]),
      ...                                 jnp.array([[3, 0, -1, 1]]))
      >>> print(f"{float(loss):.4f}")
      0.8500
    """
    reduction = _reduction("multilabel_margin_loss", reduction, size_average, reduce)
    return _reduce(_batched(_margin.multilabel_margin, target, input), reduction)


def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    p: int = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.multi_margin_loss`` over :func:`jaxloss.multi_margin`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> loss = F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      >>> print(f"{float(loss):.4f}")
      0.3250
    """
    reduction = _reduction("multi_margin_loss", reduction, size_average, reduce)
    weight = None if weight is None else jnp.asarray(weight)
    loss = _batched(_margin.multi_margin, target, input, p=p, margin=margin, class_weight=weight)
    return _reduce(loss, reduction)


# --- embeddings and ranking ---


def hinge_embedding_loss(
    input: ArrayLike,
    target: ArrayLike,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.hinge_embedding_loss`` over :func:`jaxloss.hinge_embedding`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> print(F.hinge_embedding_loss(jnp.array([0.3, 0.4]), jnp.array([1.0, -1.0])))
      0.45
    """
    reduction = _reduction("hinge_embedding_loss", reduction, size_average, reduce)
    loss = _elementwise(_embedding_pairs.hinge_embedding, target, input, margin=margin)
    return _reduce(loss, reduction)


def cosine_embedding_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.cosine_embedding_loss`` over :func:`jaxloss.cosine_embedding`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> x1, x2 = jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.array([[0.6, 0.8], [0.6, 0.8]])
      >>> print(np.asarray(F.cosine_embedding_loss(x1, x2, jnp.array([1, -1]),
      ...                                          reduction="none")).round(4))
      [0.4 0.6]
    """
    reduction = _reduction("cosine_embedding_loss", reduction, size_average, reduce)
    input1, input2, target = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(target)
    if input1.ndim == 1:
        pair = (input1[None], input2[None])
        loss = _embedding_pairs.cosine_embedding(target[None], pair, margin=float(margin))[0]
    else:
        loss = _embedding_pairs.cosine_embedding(target, (input1, input2), margin=float(margin))
    return _reduce(loss, reduction)


def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.margin_ranking_loss`` over :func:`jaxloss.margin_ranking`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> print(np.asarray(F.margin_ranking_loss(jnp.array([0.5, 0.5]), jnp.array([1.0, 1.0]),
      ...     jnp.array([1.0, -1.0]), margin=0.1, reduction="none")).round(4))
      [0.6 0. ]
    """
    reduction = _reduction("margin_ranking_loss", reduction, size_average, reduce)
    input1, input2, target = jnp.broadcast_arrays(
        jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(target)
    )
    scores = jnp.stack([input1, input2], axis=-1)
    return _reduce(_ranking.margin_ranking(target, scores, margin=float(margin)), reduction)


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.triplet_margin_loss`` over ``jaxloss.ops.metric_learning``.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> print(np.asarray(F.triplet_margin_loss(a, a + 0.1, n, eps=0.0, reduction="none")
      ...       ).round(4))
      [0.1414 0.1414]
    """
    reduction = _reduction("triplet_margin_loss", reduction, size_average, reduce)
    loss = _metric_ops.triplet_margin_loss(
        anchor, positive, negative, margin=float(margin), p=float(p), eps=float(eps), swap=swap
    )
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """``torch.nn.functional.triplet_margin_with_distance_loss``: :func:`jaxloss.triplet_margin`.

    ``distance_function=None`` is torch's ``pairwise_distance`` (``p=2``, ``eps=1e-6``).

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import torch as F
      >>> a, n = jnp.zeros((1, 2)), jnp.array([[3.0, 4.0]])
      >>> l1 = lambda x, y: jnp.sum(jnp.abs(x - y), axis=-1)
      >>> print(F.triplet_margin_with_distance_loss(a, a + 1.0, n, distance_function=l1,
      ...                                           margin=6.0))
      1.0
    """
    reduction = _reduction("triplet_margin_with_distance_loss", reduction)
    triplet = (jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative))
    options: dict[str, Any] = {"margin": float(margin), "swap": swap}
    if distance_function is not None:
        options["distance_metric"] = distance_function
    return _reduce(_embedding_pairs.triplet_margin(None, triplet, **options), reduction)


# --- regression ---


def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> jax.Array:
    """``torch.nn.functional.mse_loss`` over :func:`jaxloss.mean_squared_error`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> print(F.mse_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])))
      2.5
    """
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    loss = _elementwise(_regression.mean_squared_error, target, input)
    return _reduce(loss, reduction, weight)


def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> jax.Array:
    """``torch.nn.functional.l1_loss`` over :func:`jaxloss.mean_absolute_error`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> print(F.l1_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0]), reduction="sum"))
      3.0
    """
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    loss = _elementwise(_regression.mean_absolute_error, target, input)
    return _reduce(loss, reduction, weight)


def huber_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: ArrayLike | None = None,
) -> jax.Array:
    """``torch.nn.functional.huber_loss`` over :func:`jaxloss.huber`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> print(F.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none"))
      [0.125 2.5  ]
    """
    reduction = _reduction("huber_loss", reduction)
    loss = _elementwise(_regression.huber, target, input, delta=delta)
    return _reduce(loss, reduction, weight)


def smooth_l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> jax.Array:
    """``torch.nn.functional.smooth_l1_loss`` over :func:`jaxloss.smooth_l1`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> print(F.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none"))
      [0.125 2.5  ]
    """
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    loss = _elementwise(_regression.smooth_l1, target, input, beta=beta)
    return _reduce(loss, reduction)


# --- sequences and language-model heads ---


def _padded_targets(targets: jax.Array, target_lengths: jax.Array, batch: int) -> jax.Array:
    """torch's concatenated 1-D targets as a padded ``[N, max_len]`` array (concrete lengths)."""
    lengths = np.asarray(target_lengths).reshape(-1)
    width = max(int(lengths.max()), 1) if lengths.size else 1
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    index = offsets[:, None] + np.arange(width)[None, :]
    valid = np.arange(width)[None, :] < lengths[:, None]
    index = np.where(valid, index, 0)
    return jnp.where(jnp.asarray(valid), targets[jnp.asarray(index)], 0)[:batch]


def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike,
    target_lengths: ArrayLike,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> jax.Array:
    """``torch.nn.functional.ctc_loss`` over :func:`jaxloss.ops.ctc_loss`.

    ``log_probs`` ``[T, N, C]`` (or ``[T, C]``); ``targets`` padded ``[N, S]`` or concatenated
    ``[sum(target_lengths)]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> log_probs = jax.nn.log_softmax(jnp.zeros((4, 2, 3)))   # [T, N, C], uniform
      >>> targets = jnp.array([[1, 2], [1, 1]])
      >>> print(F.ctc_loss(log_probs, targets, jnp.array([4, 4]), jnp.array([2, 2]),
      ...                  reduction="none"))
      [1.686 2.785]
    """
    reduction = _reduction("ctc_loss", reduction)
    log_probs, targets = jnp.asarray(log_probs), jnp.asarray(targets)
    input_lengths, target_lengths = jnp.asarray(input_lengths), jnp.asarray(target_lengths)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs, targets = log_probs[:, None], targets[None]
        input_lengths, target_lengths = input_lengths.reshape(1), target_lengths.reshape(1)
    batch = log_probs.shape[1]
    if targets.ndim == 1:
        targets = _padded_targets(targets, target_lengths, batch)
    loss = ops.ctc_loss(
        jnp.transpose(log_probs, (1, 0, 2)),
        targets,
        logit_lengths=input_lengths,
        label_lengths=target_lengths,
        blank_id=blank,
        zero_infinity=zero_infinity,
    )
    if unbatched:
        loss = loss[0]
    if reduction == "mean":
        return jnp.mean(loss / jnp.maximum(target_lengths, 1).astype(loss.dtype))
    return _reduce(loss, reduction)


def linear_cross_entropy(
    input: ArrayLike,
    linear_weight: ArrayLike,
    target: ArrayLike,
    *,
    linear_bias: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: Any = None,
) -> jax.Array:
    """``torch.nn.functional.linear_cross_entropy`` over :func:`jaxloss.ops.linear_cross_entropy`.

    ``cross_entropy(input @ linear_weight.T + linear_bias, target, ...)`` with ``input``
    ``[N, in_features]`` (or ``[in_features]``) and ``linear_weight`` ``[C, in_features]``, without
    the ``[N, C]`` logits when the targets are class indices and ``weight`` is ``None``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import torch as F
      >>> x, w = jnp.ones((2, 4)), jnp.zeros((10, 4))
      >>> print(f"{float(F.linear_cross_entropy(x, w, jnp.array([1, -100]))):.4f}")  # log(10)
      2.3026
    """
    del options
    name = "linear_cross_entropy"
    reduction = _reduction(name, reduction)
    input, linear_weight, target = (jnp.asarray(a) for a in (input, linear_weight, target))
    if linear_weight.ndim != 2 or input.ndim not in (1, 2):
        raise ValueError(
            f"{name}: `input` must be [N, in_features] or [in_features] and `linear_weight` "
            f"[C, in_features]; got {input.shape} and {linear_weight.shape}."
        )
    ignore = -100 if ignore_index is None else ignore_index
    if weight is not None or not jnp.issubdtype(target.dtype, jnp.integer):
        logits = input @ linear_weight.T
        if linear_bias is not None:
            logits = logits + jnp.asarray(linear_bias)
        return cross_entropy(
            logits,
            target,
            weight=weight,
            ignore_index=ignore,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    # Without return_aux the kernel returns the per-token losses alone.
    loss = cast(
        jax.Array,
        ops.linear_cross_entropy(
            input,
            linear_weight,
            target,
            bias=linear_bias,
            weight_layout="vh",
            ignore_index=ignore,
            label_smoothing=label_smoothing,
        ),
    )
    if reduction == "mean":
        return jnp.sum(loss) / jnp.sum(target != ignore)
    return _reduce(loss, reduction)
