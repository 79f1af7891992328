"""``optax.losses`` on jaxloss: same names, signatures, defaults and semantics (optax 0.2.8).

Replace ``from optax import losses`` with ``from jaxloss.compat import optax as losses``. Every
function here only reshapes and renames arguments and calls a jaxloss kernel
(:mod:`jaxloss.ops`: the fused softmax, sparse-softmax and sigmoid cross-entropies, CTC) or a
jaxloss loss function; the math lives there, once.

Departures from optax, each where optax's result is a defect:

* ``softmax_cross_entropy_with_integer_labels``: a label outside ``[0, K)`` gives ``NaN`` for its
  row (optax reads a negative label from the end of the row and scores it as a valid class); a
  label on a class that ``where`` masks out gives ``+inf`` (it has zero probability under the
  masked softmax; optax returns a finite, possibly negative number).
* ``multiclass_hinge_loss`` / ``multiclass_perceptron_loss``: a label outside ``[0, K)`` gives
  ``NaN`` (optax scores it against an all-zero one-hot target).
* ``hinge_loss``, ``perceptron_loss``, ``sparsemax_loss``: targets in ``{0, 1}`` are read as
  ``{-1, 1}`` when every target is 0 or 1 (Keras' hinge rule), so ``0`` means the negative class
  instead of optax's "no margin" for ``hinge_loss``/``perceptron_loss``; ``{-1, 1}`` targets give
  optax's values.
* ``ctc_loss``: a target with no feasible alignment gives ``+inf`` (optax: a finite ~``1e5``
  set by ``log_epsilon``, which is accepted and unused); the paddings must be suffixes (1.0 after
  the last valid step), as they are in practice: optax also skips padded frames in the middle.
* ``ntxent``: a batch without a positive pair gives 0 (optax: ``NaN``).
* ``dice_loss``, ``binary_dice_loss``, ``multiclass_generalized_dice_loss``,
  ``ranking_softmax_loss`` and ``ntxent`` are jaxloss's own implementations of optax's
  signatures (segmentation, ranking and metric-learning families). ``dice_loss`` with
  ``apply_softmax=False`` does not raise for probabilities outside ``[0, 1]``: optax's eager
  value check is what makes its ``dice_loss`` fail under ``jit``.
* The cross-entropy and CTC adapters run jaxloss's reverse-mode kernels (``jax.custom_vjp``):
  ``jax.grad`` and ``jax.hessian`` work, forward mode on the loss itself (``jax.jvp``,
  ``jax.jacfwd``, ``check_grads`` with ``modes=("fwd",)``) does not; the ``*_jvp`` twins in
  :mod:`jaxloss.ops` support it.
* bfloat16/float16 inputs to the cross-entropies give float32 losses (the kernels' compute dtype).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import (
    _embedding_pairs,
    _focal,
    _hinge,
    _likelihood,
    _margin,
    _ranking,
    _regression,
    _segmentation,
    _sparsemax,
    ops,
)
from jaxloss.ops import metric_learning as _metric_ops

Axis = int | tuple[int, ...] | None

# Families that already have optax's signatures serve it directly, one definition each.
dice_loss = _segmentation.dice_loss
binary_dice_loss = _segmentation.binary_dice_loss
multiclass_generalized_dice_loss = _segmentation.multiclass_generalized_dice_loss
ranking_softmax_loss = _ranking.ranking_softmax_loss
ntxent = _metric_ops.ntxent

__all__ = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "triplet_margin_loss",
]


# --- argument plumbing ---


def _class_axes_last(x: jax.Array, axis: Axis) -> jax.Array:
    """``x`` with the ``axis`` axes moved to the end and merged into one (order kept)."""
    if axis is None:
        return x.reshape(-1)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes)
    rest = tuple(d for d in range(x.ndim) if d not in axes)
    if rest + axes != tuple(range(x.ndim)):
        x = jnp.transpose(x, rest + axes)
    # A no-op transpose or reshape still costs a copy of the logits in the compiled step.
    return x if len(axes) == 1 else x.reshape((*x.shape[: len(rest)], -1))


def _elementwise(
    fn: Callable[..., jax.Array], targets, predictions, *, same_shape: bool = False, **options
) -> jax.Array:
    """Call a last-axis-mean loss elementwise: each element becomes its own length-1 row."""
    predictions = jnp.asarray(predictions)
    targets = jnp.zeros_like(predictions) if targets is None else jnp.asarray(targets)
    if same_shape and targets.shape != predictions.shape:
        raise ValueError(
            f"{fn.__name__}: `targets` must have the shape of `predictions` "
            f"{predictions.shape}; got {targets.shape}."
        )
    targets, predictions = jnp.broadcast_arrays(targets, predictions)
    return fn(targets[..., None], predictions[..., None], **options)


def _unbatched(fn: Callable[..., jax.Array], labels, scores, **options) -> jax.Array:
    """Call a batched class-index loss on one example (scores ``[K]``, a scalar label) too."""
    scores = jnp.asarray(scores)
    if scores.ndim == 1:
        return fn(jnp.asarray(labels)[None], scores[None], **options)[0]
    return fn(labels, scores, **options)


def _masked_logits(logits: jax.Array, where: jax.Array) -> jax.Array:
    # Masked classes leave the softmax; a row with none left keeps finite logits (its result is
    # zeroed afterwards) so that no NaN reaches the gradient.
    filler = jnp.where(jnp.any(where, axis=-1, keepdims=True), -jnp.inf, 0.0)
    return jnp.where(where, logits, filler.astype(logits.dtype))


# --- classification ---


def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.softmax_cross_entropy`` over :func:`jaxloss.ops.softmax_cross_entropy`.

    ``-sum(labels * log_softmax(logits), axis)``; ``axis`` may be a tuple or ``None``; ``where``
    masks classes (a mask with the batch's rank is expanded on ``axis``, as optax does).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.softmax_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]])))
      [0.6931472]
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    labels = jnp.broadcast_to(labels, logits.shape)
    if where is not None:
        where = jnp.asarray(where, bool)
        if where.ndim != logits.ndim:
            where = jnp.expand_dims(where, -1 if axis is None else axis)
        where = _class_axes_last(jnp.broadcast_to(where, logits.shape), axis)
    logits, labels = _class_axes_last(logits, axis), _class_axes_last(labels, axis)
    if where is None:
        return ops.softmax_cross_entropy(logits, labels)
    loss = ops.softmax_cross_entropy(_masked_logits(logits, where), jnp.where(where, labels, 0))
    return jnp.where(jnp.any(where, axis=-1), loss, 0.0)


def safe_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """``optax.losses.safe_softmax_cross_entropy``: a zero label facing a ``-inf`` logit adds 0.

    :func:`jaxloss.ops.softmax_cross_entropy` already has this property, value and gradient.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.safe_softmax_cross_entropy(jnp.array([[0.0, -jnp.inf]]),
      ...                                         jnp.array([[1.0, 0.0]])))
      [0.]
    """
    return ops.softmax_cross_entropy(logits, labels)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.softmax_cross_entropy_with_integer_labels`` over the sparse CE kernel.

    With a tuple ``axis`` the logits' class axes are flattened in order and ``labels`` index the
    flattened classes, as in optax. See the module docstring for out-of-range and masked labels.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> print(np.asarray(losses.softmax_cross_entropy_with_integer_labels(
      ...     logits, jnp.array([0, 1]))).round(4))
      [0.2761 2.9518]
    """
    if not isinstance(axis, (int, tuple)):
        raise ValueError(
            "softmax_cross_entropy_with_integer_labels: `axis` must be an int or a tuple of "
            f"ints; got {axis!r}."
        )
    logits = jnp.asarray(logits)
    if where is not None:
        where = jnp.asarray(where, bool)
        if where.ndim != logits.ndim:
            where = jnp.expand_dims(where, axis)
        where = _class_axes_last(jnp.broadcast_to(where, logits.shape), axis)
    logits = _class_axes_last(logits, axis)
    if where is None:
        return ops.sparse_softmax_cross_entropy(logits, labels)
    loss = ops.sparse_softmax_cross_entropy(_masked_logits(logits, where), labels)
    return jnp.where(jnp.any(where, axis=-1), loss, 0.0)


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """``optax.losses.sigmoid_binary_cross_entropy`` over the fused sigmoid CE kernel.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.sigmoid_binary_cross_entropy(
      ...     jnp.array([0.0, 2.0]), jnp.array([1.0, 0.0]))).round(4))
      [0.6931 2.1269]
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    logits, labels = jnp.broadcast_arrays(logits, labels)
    return ops.sigmoid_binary_cross_entropy(logits, labels)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: ArrayLike | None = None,
    gamma: ArrayLike = 2.0,
) -> jax.Array:
    """``optax.losses.sigmoid_focal_loss`` over :func:`jaxloss.binary_focal_crossentropy`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]))
      ...       ).round(4))
      [0.1733]
    """
    return _elementwise(
        _focal.binary_focal_crossentropy,
        labels,
        logits,
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha,
        gamma=gamma,
        from_logits=True,
    )


def poly_loss_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: ArrayLike = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.poly_loss_cross_entropy`` over :func:`jaxloss.poly1_crossentropy`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.poly_loss_cross_entropy(
      ...     jnp.array([[0.0, 0.0]]), jnp.array([[0.0, 1.0]]), epsilon=1.0)).round(4))
      [1.1931]
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    labels = jnp.broadcast_to(labels, logits.shape)
    if where is not None:
        where = _class_axes_last(jnp.broadcast_to(jnp.asarray(where, bool), logits.shape), axis)
    return _sparsemax.poly1_crossentropy(
        _class_axes_last(labels, axis),
        _class_axes_last(logits, axis),
        epsilon=jnp.asarray(epsilon),
        where=where,
    )


def hinge_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    """``optax.losses.hinge_loss`` (elementwise) over :func:`jaxloss.hinge`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.hinge_loss(jnp.array([0.5, -2.0]), jnp.array([1.0, -1.0])))
      [0.5 0. ]
    """
    return _elementwise(_hinge.hinge, targets, predictor_outputs)


def perceptron_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    """``optax.losses.perceptron_loss`` (elementwise) over :func:`jaxloss.perceptron`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.perceptron_loss(jnp.array([0.5, 2.0]), jnp.array([1.0, -1.0])))
      [0. 2.]
    """
    return _elementwise(_margin.perceptron, targets, predictor_outputs, same_shape=True)


def multiclass_hinge_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    """``optax.losses.multiclass_hinge_loss`` over :func:`jaxloss.multiclass_hinge`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.multiclass_hinge_loss(jnp.array([[2.0, 1.5, 0.0]]), jnp.array([0])))
      [0.5]
    """
    return _unbatched(_margin.multiclass_hinge, labels, scores, margin=1.0)


def multiclass_perceptron_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    """``optax.losses.multiclass_perceptron_loss``: :func:`jaxloss.multiclass_hinge`, margin 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.multiclass_perceptron_loss(jnp.array([[2.0, 1.5, 0.0]]), jnp.array([1])))
      [0.5]
    """
    return _unbatched(_margin.multiclass_hinge, labels, scores, margin=0.0)


def sparsemax_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """``optax.losses.sparsemax_loss`` (binary) over :func:`jaxloss.binary_sparsemax_loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.sparsemax_loss(jnp.array([0.0, -3.0]), jnp.array([1, 0])))
      [0.25 0.  ]
    """
    return _elementwise(_margin.binary_sparsemax_loss, labels, logits)


def multiclass_sparsemax_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    """``optax.losses.multiclass_sparsemax_loss`` over :func:`jaxloss.sparsemax_loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.multiclass_sparsemax_loss(jnp.array([[0.5, 1.0, -2.0]]), jnp.array([0])))
      [0.5625]
    """
    scores = jnp.asarray(scores)
    targets = jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    return _sparsemax.sparsemax_loss(targets, scores)


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., jax.Array]:
    """``optax.losses.make_fenchel_young_loss`` over :func:`jaxloss.fenchel_young_loss`.

    Returns ``loss(scores, targets, *args, **kwargs) = max_fun(scores, *args, **kwargs) -
    <targets, scores>`` on the last axis.

    Examples:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> loss = losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
      >>> print(np.asarray(loss(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))).round(4))
      [0.6931]
    """

    def fenchel_young_loss(scores: ArrayLike, targets: ArrayLike, *args: Any, **kwargs: Any):
        def conjugate(row: jax.Array) -> jax.Array:
            return max_fun(row, *args, **kwargs)

        return _sparsemax.fenchel_young_loss(targets, scores, regularizer=conjugate)

    return fenchel_young_loss


def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.kl_divergence`` over :func:`jaxloss.log_kl_divergence`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.kl_divergence(jnp.log(jnp.array([[0.25, 0.75]])),
      ...                                       jnp.array([[0.5, 0.5]]))).round(4))
      [0.1438]
    """
    return _likelihood.log_kl_divergence(targets, log_predictions, axis=axis, where=where)


def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.kl_divergence_with_log_targets`` over :func:`jaxloss.log_kl_divergence`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.kl_divergence_with_log_targets(
      ...     jnp.log(jnp.array([[0.25, 0.75]])), jnp.log(jnp.array([[0.5, 0.5]])))).round(4))
      [0.1438]
    """
    return _likelihood.log_kl_divergence(
        log_targets, log_predictions, log_target=True, axis=axis, where=where
    )


def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.generalized_kl_divergence`` over :func:`jaxloss.generalized_kl_divergence`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.generalized_kl_divergence(jnp.zeros((1, 2)),
      ...                                                   jnp.array([[2.0, 0.0]]))).round(4))
      [1.3863]
    """
    return _likelihood.generalized_kl_divergence(targets, log_predictions, axis=axis, where=where)


def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.convex_kl_divergence``, optax's deprecated name of the generalized KL.

    Emits a ``DeprecationWarning``, as optax does.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> import warnings
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     print(np.asarray(losses.convex_kl_divergence(jnp.zeros((1, 2)),
      ...                                                  jnp.array([[1.0, 1.0]]))).round(4))
      [0.]
    """
    warnings.warn(
        "convex_kl_divergence is deprecated (as in optax); use generalized_kl_divergence.",
        DeprecationWarning,
        stacklevel=2,
    )
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)


def _lengths(paddings: ArrayLike) -> jax.Array:
    """optax's paddings (1.0 past a row's end) as the kernels' per-row lengths."""
    return jnp.sum(1 - jnp.asarray(paddings), axis=-1).round().astype(jnp.int32)


def ctc_loss(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: ArrayLike = -1e5,
) -> jax.Array:
    """``optax.losses.ctc_loss`` over :func:`jaxloss.ops.ctc_loss` (paddings become lengths).

    ``log_epsilon`` is accepted for signature compatibility and unused: the kernel works with a
    true ``-inf``, so an impossible target gives ``+inf`` rather than optax's ~``1e5``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> logits, labels = jnp.zeros((1, 4, 3)), jnp.array([[1, 2]])
      >>> print(losses.ctc_loss(logits, jnp.zeros((1, 4)), labels, jnp.zeros((1, 2))))
      [1.686]
    """
    del log_epsilon
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    logit_lengths, label_lengths = _lengths(logit_paddings), _lengths(label_paddings)
    return ops.ctc_loss(
        logits,
        labels,
        logit_lengths=logit_lengths,
        label_lengths=label_lengths,
        blank_id=blank_id,
    )


def ctc_loss_with_forward_probs(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: ArrayLike = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``optax.losses.ctc_loss_with_forward_probs`` over :func:`jaxloss.ops.ctc_forward_variables`.

    Returns ``(per_seq_loss, logalpha_blank, logalpha_nonblank)``: ``[B]``, ``[T, B, N+1]`` and
    ``[T, B, N]``. ``logalpha_blank[t, b, n]`` is the log-probability of the frames up to ``t``
    ending in the blank after ``n`` labels, ``logalpha_nonblank[t, b, n]`` of ending on label
    ``n``; as in optax, the last frame's blank row also absorbs the label before it
    (``logaddexp(blank[n], nonblank[n-1])``), so ``per_seq_loss[b] = -logalpha_blank[-1, b,
    label_length]``.

    Unreachable states are ``log_epsilon`` (optax's stand-in for ``log(0)``; optax's own values
    there are ``log_epsilon`` plus whatever log-probabilities the path added); an infeasible
    target's loss is ``+inf`` as in :func:`ctc_loss`. States after a row's last label follow the
    lattice with the padding read as blanks (optax's depend on the padding values). Every output
    is differentiable by JAX's autodiff in both modes.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> logits, labels = jnp.zeros((1, 4, 3)), jnp.array([[1, 2]])
      >>> loss, blank, label = losses.ctc_loss_with_forward_probs(
      ...     logits, jnp.zeros((1, 4)), labels, jnp.zeros((1, 2)))
      >>> print(loss, blank.shape, label.shape, -blank[-1, 0, 2])
      [1.686] (4, 1, 3) (4, 1, 2) 1.686
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    logit_lengths, label_lengths = _lengths(logit_paddings), _lengths(label_paddings)
    loss, blank, label = ops.ctc_forward_variables(
        logits,
        labels,
        logit_lengths=logit_lengths,
        label_lengths=label_lengths,
        blank_id=blank_id,
    )
    if blank.shape[0]:
        pad = jnp.full((*label.shape[1:-1], 1), -jnp.inf, label.dtype)
        last = jnp.logaddexp(blank[-1], jnp.concatenate([pad, label[-1]], axis=-1))
        blank = blank.at[-1].set(last)
    floor = jnp.asarray(log_epsilon, blank.dtype)
    return loss, jnp.maximum(blank, floor), jnp.maximum(label, floor)


# --- regression ---


def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """``optax.losses.squared_error`` (elementwise) over :func:`jaxloss.mean_squared_error`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])))
      [1. 4.]
    """
    return _elementwise(_regression.mean_squared_error, targets, predictions, same_shape=True)


def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """``optax.losses.l2_loss``: half the squared error.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.l2_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])))
      [0.5 2. ]
    """
    return 0.5 * squared_error(predictions, targets)


def huber_loss(
    predictions: ArrayLike, targets: ArrayLike | None = None, *, delta: ArrayLike = 1.0
) -> jax.Array:
    """``optax.losses.huber_loss`` (elementwise) over :func:`jaxloss.huber`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.huber_loss(jnp.array([0.5, 3.0])))
      [0.125 2.5  ]
    """
    return _elementwise(_regression.huber, targets, predictions, delta=delta)


def log_cosh(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """``optax.losses.log_cosh`` (elementwise) over :func:`jaxloss.log_cosh`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.log_cosh(jnp.array([0.0, 1.0]))).round(4))
      [0.     0.4338]
    """
    return _elementwise(_regression.log_cosh, targets, predictions)


def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.cosine_distance`` over :func:`jaxloss.cosine_distance`.

    optax's default ``epsilon=0`` is kept: a zero vector gives ``NaN``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.cosine_distance(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]])))
      [1.]
    """
    return _regression.cosine_distance(
        targets, predictions, axis=axis, epsilon=jnp.asarray(epsilon), where=where
    )


def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.cosine_similarity``: one minus :func:`jaxloss.cosine_distance`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.compat import optax as losses
      >>> print(losses.cosine_similarity(jnp.array([[1.0, 1.0]]), jnp.array([[3.0, 3.0]])))
      [1.]
    """
    return 1.0 - cosine_distance(predictions, targets, epsilon=epsilon, axis=axis, where=where)


# --- label smoothing ---


def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    axis: int = -1,
    norm_degree: float = 2,
    margin: float = 1.0,
    eps: float = 1e-6,
) -> jax.Array:
    """``optax.losses.triplet_margin_loss``: ``max(d(a, p) - d(a, n) + margin, 0)`` per triplet.

    ``d`` is optax's distance, :func:`jaxloss.ops.power_distance`:
    ``(sum((x - y) ** norm_degree, axis) + eps) ** (1 / norm_degree)`` (``eps`` inside the root,
    no absolute value), passed as the distance of :func:`jaxloss.triplet_margin`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> n = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> print(np.asarray(losses.triplet_margin_loss(a, a + 0.1, n, margin=1.0)).round(4))
      [0.1414 0.1414]
    """
    a, p, n = (jnp.moveaxis(jnp.asarray(x), axis, -1) for x in (anchors, positives, negatives))
    distance = functools.partial(_metric_ops.power_distance, degree=norm_degree, eps=eps)
    return _embedding_pairs.triplet_margin(None, (a, p, n), margin=margin, distance_metric=distance)


def smooth_labels(
    labels: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """``optax.losses.smooth_labels``: ``(1 - alpha) * labels + alpha / K`` over ``axis``.

    ``K`` is the number of classes on ``axis`` (the product over a tuple), or the number of
    classes ``where`` keeps. A target transform, not a loss: the kernels' own
    ``label_smoothing`` options do this without materialising the smoothed targets.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.compat import optax as losses
      >>> print(np.asarray(losses.smooth_labels(jnp.array([[0.0, 1.0]]), 0.2)).round(4))
      [[0.1 0.9]]
    """
    labels = jnp.asarray(labels)
    if where is None:
        axes = range(labels.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        num_classes = math.prod(labels.shape[a] for a in axes)
    else:
        num_classes = jnp.sum(jnp.asarray(where), axis=axis, keepdims=True)
    return jnp.asarray((1.0 - alpha) * labels + alpha / num_classes)
