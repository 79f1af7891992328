"""Sequence-labelling losses: ``y_true`` int tags ``[batch, T]``, ``y_pred`` ``[batch, T, C]``.

* :func:`sequence_loss`: per-token softmax cross-entropy with per-token weights, averaged or
  summed across timesteps and/or the batch (TensorFlow Addons' ``sequence_loss``).
* :func:`linear_chain_crf`: the negative log-likelihood of the tag sequence under a linear-chain
  CRF with unary potentials ``[batch, T, C]`` and a transition matrix ``[C, C]``
  (``transitions[i, j]`` scores tag ``i`` followed by tag ``j``), computed with the forward
  algorithm in ``lax.scan``; :func:`crf_decode` is its Viterbi decoder.

``lengths`` (``[batch]`` ints, default ``T``) marks the valid prefix of each sequence: later steps
take part in nothing::

    >>> import jax.numpy as jnp
    >>> import jaxloss
    >>> potentials = jnp.array([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    >>> transitions = jnp.array([[0.0, 2.0], [0.0, 0.0]])
    >>> tags, score = jaxloss.crf_decode(potentials, transitions, lengths=jnp.array([2]))
    >>> print(tags, score)
    [[0 1 0]] [4.]
    >>> print(jaxloss.linear_chain_crf(tags, (potentials, transitions), lengths=jnp.array([2])))
    [0.11144257]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops.cross_entropy import sparse_softmax_cross_entropy


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num), num / safe)


def _check_modes(loss: str, options: dict[str, Any]) -> dict[str, bool]:
    modes = {k: c.check_option(loss, k, v, c.BOOL) for k, v in options.items()}
    for axis in ("timesteps", "batch"):
        if modes[f"average_across_{axis}"] and modes[f"sum_over_{axis}"]:
            raise ValueError(
                f"{loss}: `average_across_{axis}` and `sum_over_{axis}` must not both be True; "
                "got True and True."
            )
    return modes


def _token_terms(
    loss: str, y_true: ArrayLike, y_pred: ArrayLike, weights: ArrayLike | None
) -> tuple[jax.Array, jax.Array]:
    """Weighted per-token cross-entropy ``[batch, T]`` and the token weights ``[batch, T]``."""
    logits = c.as_float(y_pred, loss=loss, arg="y_pred")
    if logits.ndim != 3:
        raise ValueError(
            f"{loss}: `y_pred` must be logits of shape [batch, T, C]; got shape "
            f"{tuple(logits.shape)}."
        )
    if logits.shape[-1] == 0:
        raise ValueError(
            f"{loss}: `y_pred` must have at least one class; got shape {logits.shape}."
        )
    labels = c.as_input_array(loss, "y_true", y_true)
    c.check_integer(loss, "y_true", labels)
    if labels.shape != logits.shape[:2]:
        raise ValueError(
            f"{loss}: `y_true` must have shape {tuple(logits.shape[:2])} (the [batch, T] of "
            f"`y_pred`); got shape {tuple(labels.shape)}."
        )
    if weights is None:
        w = jnp.ones(labels.shape, logits.dtype)
    else:
        w = c.as_float(weights, logits.dtype, loss, "weights")
        if w.ndim == 1:
            w = w[:, None]
        try:
            w = jnp.broadcast_to(w, labels.shape)
        except ValueError:
            raise ValueError(
                f"{loss}: `weights` must broadcast to {tuple(labels.shape)}; got shape "
                f"{tuple(w.shape)}."
            ) from None
    ce = sparse_softmax_cross_entropy(logits, labels.astype(jnp.int32)).astype(w.dtype)
    return ce * w, w


def _reduces_batch(modes: dict[str, Any]) -> bool:
    """Whether the result is a ratio of batch sums (a scalar or ``[T]``)."""
    avg_t, avg_b = modes["average_across_timesteps"], modes["average_across_batch"]
    sum_t, sum_b = modes["sum_over_timesteps"], modes["sum_over_batch"]
    # TFA gives averaging precedence over summing when they name different axes.
    return avg_b or (sum_t and sum_b) or (sum_b and not avg_t)


def _sequence_sums(
    ce: jax.Array, w: jax.Array, modes: dict[str, Any]
) -> tuple[jax.Array, jax.Array]:
    """``(numerator, denominator)`` of a mode that reduces over the batch."""
    nonzero = (w != 0).astype(ce.dtype)
    if modes["average_across_timesteps"] and modes["average_across_batch"]:
        return jnp.sum(ce), jnp.sum(w)
    if modes["sum_over_timesteps"] and modes["sum_over_batch"]:
        return jnp.sum(ce), jnp.sum(nonzero)
    avg_b = modes["average_across_batch"]
    return jnp.sum(ce, axis=0), jnp.sum(w if avg_b else nonzero, axis=0)


def sequence_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    weights: ArrayLike | None = None,
    average_across_timesteps: bool = True,
    average_across_batch: bool = True,
    sum_over_timesteps: bool = False,
    sum_over_batch: bool = False,
) -> jax.Array:
    """Weighted per-token cross-entropy of a sequence (TFA's ``seq2seq.sequence_loss``).

    With ``ce[b, t] = w[b, t] * (logsumexp(y_pred[b, t]) - y_pred[b, t, y_true[b, t]])``:

    * ``average_across_*``: ``sum(ce) / sum(w)`` over the named axes;
    * ``sum_over_*``: ``sum(ce) / count(w != 0)`` over the named axes (TFA's naming: the sum is
      divided by the number of non-zero weights);
    * both axes averaged (default) or both summed: a scalar; one axis: ``[batch]`` (timesteps
      reduced) or ``[T]`` (batch reduced); neither: ``[batch, T]``. When one axis is averaged
      and the other summed, TFA averages the first and ignores the second; so does this.

    Args:
      y_true: integer targets ``[batch, T]``.
      y_pred: logits ``[batch, T, C]``.
      weights: per-token weights ``[batch, T]`` (or ``[batch]``); default all ones. A 0/1 mask
        from the sequence lengths is the usual choice.
      average_across_timesteps, average_across_batch, sum_over_timesteps, sum_over_batch: the
        reductions above; ``average_across_X`` and ``sum_over_X`` must not both be True.

    Returns:
      A scalar, ``[batch]``, ``[T]`` or ``[batch, T]`` as above.

    Raises:
      TypeError: float targets, non-numeric inputs, non-boolean flags.
      ValueError: shapes that do not match; both ``average_across_X`` and ``sum_over_X``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [3.0, 0.0]]])
      >>> targets = jnp.array([[0, 1], [1, 0]])
      >>> weights = jnp.array([[1.0, 1.0], [1.0, 0.0]])
      >>> print(f"{float(jaxloss.sequence_loss(targets, logits, weights)):.6f}")
      0.377779
      >>> print(jaxloss.sequence_loss(targets, logits, weights, average_across_batch=False))
      [0.22009483 0.6931472 ]

    Notes:
      A zero total weight gives 0 (TFA's ``div_no_nan``). Out-of-range targets follow
      :func:`jaxloss.ops.sparse_softmax_cross_entropy`.

      Bad values: Averaged over the batch by default, so NaN anywhere makes the loss NaN (per
      sequence with ``average_across_batch=False``). A target outside ``[0, C)`` makes its
      position's loss NaN, so the loss is NaN.
    """
    modes = _check_modes(
        "sequence_loss",
        {
            "average_across_timesteps": average_across_timesteps,
            "average_across_batch": average_across_batch,
            "sum_over_timesteps": sum_over_timesteps,
            "sum_over_batch": sum_over_batch,
        },
    )
    ce, w = _token_terms("sequence_loss", y_true, y_pred, weights)
    if _reduces_batch(modes):
        return _safe_divide(*_sequence_sums(ce, w, modes))
    if modes["average_across_timesteps"]:
        return _safe_divide(jnp.sum(ce, axis=1), jnp.sum(w, axis=1))
    if modes["sum_over_timesteps"]:
        return _safe_divide(jnp.sum(ce, axis=1), jnp.sum((w != 0).astype(ce.dtype), axis=1))
    return ce


class SequenceLoss(Loss, function=sequence_loss, inputs="sequence_logits"):
    """Class handle of :func:`sequence_loss`; the token ``weights`` are a call-time input.

    In the modes that reduce over the batch (a scalar or ``[T]`` result) the loss is a ratio of
    batch sums: ``sample_weight`` (``[batch]`` or ``[batch, T]``) multiplies the token weights,
    the sums are taken across devices with ``axis_name`` before dividing, and a ``[T]`` result is
    then averaged (summed for ``reduction="sum"``, kept for ``"none"``). In the other modes the
    per-sample result is reduced as usual. TFA's class defaults to ``sum_over_*``; this class
    keeps the function's defaults (pass ``sum_over_timesteps=True, sum_over_batch=True,
    average_across_timesteps=False, average_across_batch=False`` for TFA's class).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [3.0, 0.0]]])
      >>> targets = jnp.array([[0, 1], [1, 0]])
      >>> loss = jaxloss.SequenceLoss()
      >>> print(f"{float(loss(targets, logits, weights=jnp.array([[1., 1.], [1., 0.]]))):.6f}")
      0.377779
    """

    average_across_timesteps: bool = option(default=True, check=c.BOOL)
    average_across_batch: bool = option(default=True, check=c.BOOL)
    sum_over_timesteps: bool = option(default=False, check=c.BOOL)
    sum_over_batch: bool = option(default=False, check=c.BOOL)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_modes(type(self).__name__, self.options())

    def statistics(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any = None,
        weights: Any = None,
        **inputs: Any,
    ) -> Any:
        modes = self.options()
        if not _reduces_batch(modes):
            return None
        if sample_weight is not None:
            sw = jnp.asarray(sample_weight)
            sw = sw[:, None] if sw.ndim == 1 else sw
            weights = sw if weights is None else jnp.asarray(weights) * sw
        ce, w = _token_terms(type(self).__name__, y_true, y_pred, weights)
        return _sequence_sums(ce, w, modes)

    def from_statistics(self, statistics: Any) -> jax.Array:
        value = _safe_divide(*statistics)
        if value.ndim == 0 or self.reduction == "none":
            return value
        return jnp.sum(value) if self.reduction == "sum" else jnp.mean(value)


def _crf_inputs(
    loss: str, potentials: ArrayLike, transitions: ArrayLike, lengths: ArrayLike | None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    potentials = c.as_float(potentials, loss=loss, arg="potentials")
    if potentials.ndim != 3:
        raise ValueError(
            f"{loss}: `potentials` must have shape [batch, T, C]; got shape "
            f"{tuple(potentials.shape)}."
        )
    batch, steps, tags = potentials.shape
    transitions = c.as_float(transitions, potentials.dtype, loss, "transitions")
    if transitions.shape != (tags, tags):
        raise ValueError(
            f"{loss}: `transitions` must have shape ({tags}, {tags}); got shape "
            f"{tuple(transitions.shape)}."
        )
    if lengths is None:
        lengths = jnp.full((batch,), steps, jnp.int32)
    else:
        lengths = c.as_input_array(loss, "lengths", lengths)
        c.check_integer(loss, "lengths", lengths)
        if lengths.ndim == 2 and lengths.shape[-1] == 1:
            lengths = lengths[:, 0]
        if lengths.shape != (batch,):
            raise ValueError(
                f"{loss}: `lengths` must have shape ({batch},); got shape {tuple(lengths.shape)}."
            )
        lengths = jnp.clip(lengths.astype(jnp.int32), 0, steps)
    return potentials, transitions, lengths


def _crf_log_norm(potentials: jax.Array, transitions: jax.Array, lengths: jax.Array) -> jax.Array:
    """``log Z`` by the forward algorithm; steps at or past a sequence's length are skipped."""

    def step(alpha, xs):
        unary, t = xs
        nxt = jax.nn.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + unary
        return jnp.where((t < lengths)[:, None], nxt, alpha), None

    steps = jnp.arange(1, potentials.shape[1])
    alpha, _ = lax.scan(step, potentials[:, 0], (jnp.swapaxes(potentials[:, 1:], 0, 1), steps))
    return jnp.where(lengths > 0, jax.nn.logsumexp(alpha, axis=-1), 0.0)


def _crf_score(
    potentials: jax.Array, tags: jax.Array, transitions: jax.Array, lengths: jax.Array
) -> jax.Array:
    """The unnormalised score of ``tags``: unary terms plus transitions inside each length."""
    valid = jnp.arange(potentials.shape[1])[None, :] < lengths[:, None]
    num_tags = potentials.shape[-1]
    # A tag out of [0, C) inside the length makes that sequence's score NaN (loud), as an
    # out-of-range sparse label does; clipping keeps the gathers in bounds for the others.
    outside = jnp.any(valid & ((tags < 0) | (tags >= num_tags)), axis=1)
    tags = jnp.clip(tags, 0, num_tags - 1)
    unary = jnp.take_along_axis(potentials, tags[..., None], axis=-1)[..., 0]
    pair = transitions[tags[:, :-1], tags[:, 1:]]
    score = jnp.sum(jnp.where(valid, unary, 0.0), axis=1) + jnp.sum(
        jnp.where(valid[:, 1:], pair, 0.0), axis=1
    )
    return jnp.where(outside, jnp.nan, score)


def crf_log_likelihood(
    potentials: ArrayLike,
    tags: ArrayLike,
    transitions: ArrayLike,
    lengths: ArrayLike | None = None,
) -> jax.Array:
    """Log-likelihood of ``tags`` under a linear-chain CRF: ``score(tags) - log Z``.

    ``score(y) = sum_{t < L} potentials[t, y_t] + sum_{0 < t < L} transitions[y_{t-1}, y_t]`` and
    ``Z`` sums ``exp(score)`` over every tag sequence of length ``L`` (forward algorithm).

    Args:
      potentials: unary scores ``[batch, T, C]``.
      tags: integer tags ``[batch, T]`` (values past a sequence's length are ignored).
      transitions: ``[C, C]``; ``transitions[i, j]`` scores tag ``i`` followed by tag ``j``.
      lengths: optional ``[batch]`` ints in ``[0, T]`` (clipped); default ``T``.

    Returns:
      ``[batch]`` log-likelihoods (<= 0); 0 for an empty sequence.

    Raises:
      TypeError: float tags or lengths, non-numeric inputs.
      ValueError: shapes that do not match.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> potentials = jnp.zeros((1, 3, 2))
      >>> print(jaxloss.crf_log_likelihood(potentials, jnp.array([[0, 1, 1]]), jnp.zeros((2, 2))))
      [-2.0794415]
    """
    return _crf_log_likelihood("crf_log_likelihood", "tags", potentials, tags, transitions, lengths)


def _crf_log_likelihood(
    loss: str,
    tags_arg: str,
    potentials: ArrayLike,
    tags: ArrayLike,
    transitions: ArrayLike,
    lengths: ArrayLike | None,
) -> jax.Array:
    tags = c.as_input_array(loss, tags_arg, tags)
    potentials, transitions, lengths = _crf_inputs(loss, potentials, transitions, lengths)
    c.check_integer(loss, tags_arg, tags)
    if tags.shape != potentials.shape[:2]:
        raise ValueError(
            f"{loss}: `{tags_arg}` must have shape {tuple(potentials.shape[:2])}; got shape "
            f"{tuple(tags.shape)}."
        )
    tags = tags.astype(jnp.int32)
    score = _crf_score(potentials, tags, transitions, lengths)
    return score - _crf_log_norm(potentials, transitions, lengths)


def crf_decode(
    potentials: ArrayLike, transitions: ArrayLike, lengths: ArrayLike | None = None
) -> tuple[jax.Array, jax.Array]:
    """Viterbi decoding of a linear-chain CRF (TFA's ``crf_decode``): the best tags and score.

    Args:
      potentials: unary scores ``[batch, T, C]``.
      transitions: ``[C, C]``; ``transitions[i, j]`` scores tag ``i`` followed by tag ``j``.
      lengths: optional ``[batch]`` ints in ``[0, T]`` (clipped); default ``T``.

    Returns:
      ``(tags, score)``: int32 ``[batch, T]`` tags maximising the CRF score (0 past each
      length) and float ``[batch]`` best scores (0 for an empty sequence).

    Raises:
      TypeError: float lengths, non-numeric inputs.
      ValueError: shapes that do not match.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> potentials = jnp.array([[[1.0, 0.0], [0.0, 0.5], [1.0, 0.0]]])
      >>> transitions = jnp.array([[0.0, -1.0], [-1.0, 0.0]])
      >>> tags, score = jaxloss.crf_decode(potentials, transitions)
      >>> print(tags, score)
      [[0 0 0]] [2.]

    Notes:
      Ties go to the lowest tag index. Not differentiable (an argmax); use
      :func:`crf_log_likelihood` to train.
    """
    potentials, transitions, lengths = _crf_inputs("crf_decode", potentials, transitions, lengths)
    batch, steps, num_tags = potentials.shape
    identity = jnp.broadcast_to(jnp.arange(num_tags), (batch, num_tags))

    def forward(delta, xs):
        unary, t = xs
        scores = delta[:, :, None] + transitions[None]
        live = (t < lengths)[:, None]
        # Past a sequence's end the backpointer is the identity, so backtracking carries the
        # last real tag through the padding unchanged.
        pointer = jnp.where(live, jnp.argmax(scores, axis=1), identity)
        return jnp.where(live, jnp.max(scores, axis=1) + unary, delta), pointer

    xs = (jnp.swapaxes(potentials[:, 1:], 0, 1), jnp.arange(1, steps))
    delta, pointers = lax.scan(forward, potentials[:, 0], xs)
    last = jnp.argmax(delta, axis=-1)

    def backward(tag, pointer):
        prev = jnp.take_along_axis(pointer, tag[:, None], axis=1)[:, 0]
        return prev, prev

    _, earlier = lax.scan(backward, last, pointers, reverse=True)
    tags = jnp.concatenate([jnp.swapaxes(earlier, 0, 1), last[:, None]], axis=1)
    valid = jnp.arange(steps)[None, :] < lengths[:, None]
    tags = jnp.where(valid, tags, 0).astype(jnp.int32)
    return tags, jnp.where(lengths > 0, jnp.max(delta, axis=-1), 0.0)


def _split_crf_pred(loss: str, y_pred: Any, transitions: Any) -> tuple[Any, Any]:
    if isinstance(y_pred, tuple):
        if len(y_pred) != 2 or transitions is not None:
            raise ValueError(
                f"{loss}: `y_pred` must be `potentials` or the tuple (potentials, transitions), "
                "with `transitions` given once; got a tuple of "
                f"{len(y_pred)} and transitions={'given' if transitions is not None else None}."
            )
        return y_pred
    c.as_input_array(loss, "y_pred", y_pred)
    if transitions is None:
        raise ValueError(
            f"{loss}: `transitions` must be given, in `y_pred=(potentials, transitions)` or as "
            "the `transitions` keyword; got None."
        )
    return y_pred, transitions


def linear_chain_crf(
    y_true: ArrayLike,
    y_pred: Any,
    lengths: ArrayLike | None = None,
    transitions: ArrayLike | None = None,
) -> jax.Array:
    """Linear-chain CRF negative log-likelihood: ``log Z - score(y_true)`` per sequence.

    See :func:`crf_log_likelihood` for ``score`` and ``Z``. Gradients flow to the potentials and
    to the transition matrix, so the transitions can be a trained parameter.

    Args:
      y_true: integer tags ``[batch, T]``.
      y_pred: the tuple ``(potentials [batch, T, C], transitions [C, C])``, or the potentials
        alone with ``transitions`` given as a keyword (a call-time input of the class handle).
      lengths: optional ``[batch]`` ints in ``[0, T]`` (clipped); default ``T``.
      transitions: the transition matrix when ``y_pred`` holds only the potentials.

    Returns:
      ``[batch]`` losses (>= 0); 0 for an empty sequence.

    Raises:
      TypeError: float tags or lengths, non-numeric inputs.
      ValueError: shapes that do not match; transitions missing or given twice.

    Notes:
      Bad values: NaN in a sample's potentials makes that sample's loss NaN; the other samples are
      exact (NaN in the shared ``transitions`` reaches every sample). A tag outside ``[0, C)``
      within a sequence's length makes that sequence's loss NaN; tags past the length are not read.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> potentials = jnp.zeros((1, 3, 2))
      >>> print(jaxloss.linear_chain_crf([[0, 1, 1]], (potentials, jnp.zeros((2, 2)))))
      [2.0794415]
    """
    potentials, transitions = _split_crf_pred("linear_chain_crf", y_pred, transitions)
    return -_crf_log_likelihood(
        "linear_chain_crf", "y_true", potentials, y_true, transitions, lengths
    )


class LinearChainCRF(Loss, function=linear_chain_crf, aliases=("crf_loss",), inputs="crf"):
    """Class handle of :func:`linear_chain_crf`; ``lengths`` and ``transitions`` are call-time.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> potentials = jnp.zeros((2, 3, 2))
      >>> loss = jaxloss.LinearChainCRF()
      >>> tags = jnp.array([[0, 1, 1], [1, 0, 0]])
      >>> print(f"{float(loss(tags, (potentials, jnp.zeros((2, 2))), lengths=[3, 1])):.6f}")
      1.386294
    """
