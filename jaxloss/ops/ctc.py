"""Connectionist Temporal Classification: the loss, two decoders and forced alignment.

``ctc_loss`` runs the log-space alpha recursion of Graves et al. (2006) as one ``lax.scan`` over
time and differentiates it with a hand-written ``jax.custom_vjp``: the forward stores each step's
transition weights, and the backward propagates the state occupancies back through them with
multiply-adds only (no ``exp`` or ``log`` per step).

Layout and cost. The ``2L+1`` blank-extended states are kept as two arrays, the ``L+1`` blank
states ``[batch, L+1]`` and the ``L`` label states ``[batch, L]``. The blank update
``P = logaddexp(alpha_blank[i], alpha_label[i-1])`` is exactly the part of the label update that
the skip transition adds, so label ``i`` is ``logaddexp(alpha_label[i], P[i] if skip else
alpha_blank[i])``: one ``exp`` and one ``log`` per state and frame, the minimum for a log-space
recursion (a three-way log-sum-exp costs two ``exp`` and a ``log``). Before the scan the ``L+1``
emission columns (blank and labels) are gathered from the logits once, ``[time, batch, L+1]``,
never through a ``[batch, labels, classes]`` one-hot; the per-frame log-normaliser is one
``logsumexp`` over the classes.

Base 2. The kernel behind :func:`ctc_loss` keeps its alphas as log2-probabilities (the emissions
are scaled by ``log2(e)`` in the pass that gathers them, the log-likelihood is scaled back by
``ln 2``): on XLA:CPU ``exp2`` and ``log2`` cost about two thirds of ``exp`` and ``log`` on a step's
small arrays, which made the whole value-and-gradient about 10% faster at B=64, T=150 and 15% at
B=8, T=1000, with the same accuracy against a float64 reference. :func:`ctc_loss_jvp` and
:func:`ctc_forward_variables` stay in natural logs.

Backward. Each ``logaddexp(a, b) = max + log(1 + u)``, ``u = exp(-|a - b|)``, has the derivative
``w = 1 / (1 + u)`` with respect to the larger argument and ``u / (1 + u)`` to the other: the share
of the sum each came from, one division from what the step computed anyway. The forward stores
those weights (``[time, batch, L+1]`` for the blank update, ``[time, batch, L]`` for the label
update) instead of the alphas. The occupancy of the states at frame ``t`` (the derivative of the
log-likelihood with respect to their alphas, which is what autodiff of the recursion computes
too) starts at the last frame as the final ``logaddexp``'s split between the two end states; each
state's share flows back to its predecessors in proportion to the stored weights, so the
occupancies stay a distribution (they sum to 1 on every frame) and a state with one valid
alignment gets exactly 1. Each frame's occupancies are normalised by their total (which divides
out the rounding they share) and subtracted from the gradient buffer, which starts as every
frame's softmax (one vectorised pass): no beta or occupancy table is ever built, and nothing
``[batch, time, classes]``-sized besides the gradient itself. Against the earlier backward (the
beta recursion in log space and ``exp(alpha + beta - ll)`` per state: two ``exp`` and a ``log``
per state and frame) this took the kernel from 1.6x to 2.0x optax's speed at B=64, T=150, C=28,
L=40 and from 2.0x to 4.2x at B=8, T=1000, C=512, L=150 (2-core CPU, wall time), and the temp
memory at the larger shape from 14 to 9 MiB.

On a GPU both scans run 16 steps per loop iteration (``_common.SCAN_UNROLL``: 1.36x to 2.23x
optax's speed at B=64 T=150 on an H200, 1.52x to 2.56x at B=8 T=1000).

Polynomials (XLA:CPU, float32). A step's ``exp2`` and ``log2`` cost XLA:CPU about 1 and 1.6 ns
per state on its small arrays; float32 polynomials (``_common.exp2_neg``, and ``u * q(u)`` for
``log2(1 + u)``, both as accurate as XLA's own) cost about 0.9 ns for the two. Written plainly
they do not pay: XLA:CPU's cost model counts a fused loop whose flops exceed its bytes as
compute-bound and splits it over its threads, which costs a small step more than the polynomials
save. It never splits a fusion that ends in a ``dynamic_update_slice``, so each log-add-exp is
written into a two-row scratch buffer the loop carries (:func:`_lae_and_weight`). GPUs keep
their hardware ``exp2`` and ``log2``, float64 keeps XLA's.

Off the loop's path. The forward rule gathers the emissions less each frame's largest logit
instead of its logsumexp (the weights do not change: a constant per frame cancels from every
share) and takes the difference off the log-likelihood after the loop; the backward's gradient
buffer starts as the plain softmax, and the loop scales each frame by the cotangent. Neither the
logsumexp nor the softmax pass then stands in front of the forward loop, and XLA:CPU runs them on
the other core while the loop runs. The difference is reduced from the loop's result (times zero)
so that the logsumexp stays alive through the loop: XLA would otherwise give its buffer to the
loop's temporaries, and the loop would wait for every pass that reads it. The backward's two
per-frame sums are folded to 32 columns before they are reduced: XLA:CPU runs a longer row
reduction as two kernels, and a step pays for each kernel it runs. Each of the three changes
alone was within the run-to-run spread; together they took the small shape (B=64, T=150) clear of
2x optax's speed and made the plain forward faster too. Each one's share is in
``benchmarks/results/ctc_cpu_attempts.md``, the suite's figures in the README.

Measured and not kept (CPU): unrolling the scans (2-3x slower), a ``[labels, batch]`` layout,
per-frame gathers, a one-hot class mapping; one scan running alpha forward and beta backward
together with the gradient assembled after the loop (no faster in CPU time, and it keeps a beta
table too: about 2.5x the temp memory); the same meeting in the middle (half of each table,
gradient rows in the second half: no faster); Rabiner's scaled probability space, about 1.4x faster
per step, but float32 loses states whose probability relative to the frame's best falls below
``1e-38``, which at 1000 frames and 150 labels already corrupted whole frames' gradients; a
polynomial ``log1p`` in place of the ``log`` written plainly (split across both threads, as above:
1.6x the CPU time, slower in wall time); with the weights, the class scatter after the loop instead
of per frame (slower, and an occupancy table more), and a time-major gradient buffer (slower at the
long shape). Since the base-2 change: an extended-range linear space (each probability a float32
mantissa and exponent, added by aligning exponents with bit operations, no transcendental at all:
4x cheaper per add in isolation, but XLA:CPU computes the mantissa and the exponent in separate
loop fusions that each redo the shared work, 1.2x slower overall and 1.6x the temp memory); one
stored table for both weights (slicing it in the backward costs copies); one scatter per frame
straight into the ``[batch, time, classes]`` gradient (1.5x slower); writing the weights over the
emission table in place (XLA copies the carried table every step unless the step's writes depend on
its reads of the emissions; with that dependency the zero-filled weight tables go, about 0.5 ms,
but the loop bodies get slower: 7.66 against 6.86 ms at B=64, T=150 and 31.4 against 25.7 ms at
B=8, T=1000); dropping the per-frame renormalisation of the occupancies (no faster); the frame
logsumexp as one unshifted ``sum(exp)`` pass with the shifted passes under a ``lax.cond`` (6.73
against 6.53 ms); since the label padding, unrolling the scans by 2 or 4 (6.4-7.1 against 6.2-6.5
ms: no faster, where it had been 2-3x slower before); the backward's two per-frame sums (blank
occupancy, total) as one matmul with a 0/1 matrix instead of two two-stage reductions (7.39 against
6.71 ms). The softmax pass taken off the forward loop's path alone was 1-5% faster at B=64, T=150
but 11% slower at B=8, T=1000, and the scratch-buffer polynomials alone 3-4% faster at B=64, T=150
and level at B=8, T=1000: both are kept since, with the logsumexp off the path too and the loop no
longer waiting for either pass. Later attempts (figures in
``benchmarks/results/ctc_cpu_attempts.md``): the polynomials in Estrin form (slower than Horner's);
the backward's occupancies written over the weights each step has spent, with the class mapping as
one one-hot matmul after the loop (a leaner loop, but more work after it); faster forms of the
logsumexp, gather and softmax passes outside the loops (none worth carrying); and XLA:CPU's
``xla_cpu_small_while_loop_byte_threshold``, which compiles a whole loop as one function and does
help, but is a process-wide setting that a library cannot apply to its own computation.

Padding. :func:`ctc_loss` pads the label axis to a multiple of 8 (with the blank, as past a row's
label length): on XLA:CPU a step's loops over rows of states run much faster in whole AVX2
vectors (L=31 took 1.3-1.6x the time of L=32; B=8, T=1000, L=150 runs about 10% faster padded to
152). The added states lie past every row's label length, so no alignment ends through them.
Measured and not kept: also padding the ``L+1`` blank states (faster in the forward alone, slower
with the backward); windowing each frame's update to the states a row can occupy then (the first
``t`` states at frame ``t``; from the end, the states that can still reach the last label): about
20% fewer state updates, but only 2-4% faster, and four to five times the compile time for the
extra loops; the backward's class scatter as one one-hot matmul after the loop (slower at both
shapes); the two halves of the batch as two independent loops (XLA:CPU does not overlap them).

Numerics. ``log(0)`` is the finite sentinel ``_NEG = -1e30`` rather than ``-inf``, so the
log-sum-exps need no ``isfinite`` guards and cannot produce NaN. A sequence whose log-likelihood
ends up below ``_NEG / 2`` has no alignment with non-zero probability (its target is too long for
its input, counting the blanks needed between repeats, or every alignment passes through a logit of
``-inf``): its loss is ``+inf`` (``0`` with ``zero_infinity=True``) and its gradient exactly zero.
Every other loss is clamped at ``0`` from below, so float32 rounding never makes it negative.
Logits of any float dtype are computed in float32 (float64 stays float64); the gradient comes back
in the logits' dtype.

Forward-mode autodiff. ``jax.custom_vjp`` functions do not support ``jax.jvp``, ``jax.jacfwd`` or
``jax.hessian``. :func:`ctc_loss_jvp` has the same signature and values and supports every
transformation: it is the same forward recursion with no custom rule, differentiated by JAX's own
autodiff (its reverse mode stores the scan's residuals, as optax does, so for plain gradients
:func:`ctc_loss` is the faster and leaner choice)::

    hvp = jax.jvp(jax.grad(lambda z: ops.ctc_loss_jvp(z, y).sum()), (x,), (v,))

Bad values that ``jit`` cannot see: a label outside ``[0, classes)`` within its row's label length
gives that row a NaN loss and a zero gradient, and leaves the other rows untouched. Labels past a
row's label length are ignored whatever they hold (``-1`` padding is fine). Lengths are clipped to
``[0, max]``. A label equal to ``blank_id`` within the label length is treated as an ordinary label
that emits the blank class (as optax, Keras and PyTorch do); it is almost certainly a data bug.
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxloss.ops._common import exp2_neg, horner, scan_unroll, use_polynomials
from jaxloss.ops._sharding import vary_like

__all__ = [
    "CTCAlignment",
    "ctc_align",
    "ctc_beam_search_decode",
    "ctc_forward_variables",
    "ctc_greedy_decode",
    "ctc_loss",
    "ctc_loss_jvp",
]

# Finite stand-in for log(0): far below any reachable log-likelihood, far enough above float32's
# -3.4e38 that adding a few thousand emissions (each >= _NEG) to it stays finite.
_NEG = -1e30
# The custom-VJP kernel runs its recursion in base 2 (log2-probabilities): XLA:CPU's exp2 and
# log2 cost about two thirds of exp and log, and the weights it stores are the same shares.
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


# --------------------------------------------------------------------------------------------
# Argument checks (trace time)
# --------------------------------------------------------------------------------------------


def _check_int_array(fn: str, name: str, x, ndim: int, batch: int | None = None):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{fn}: `{name}` must be an integer array; got dtype {x.dtype}.")
    if x.ndim != ndim:
        raise ValueError(f"{fn}: `{name}` must have rank {ndim}; got shape {x.shape}.")
    if batch is not None and x.shape[0] != batch:
        raise ValueError(
            f"{fn}: `{name}` must have batch size {batch} (from the logits); got shape {x.shape}."
        )
    return x


def _check_logits(fn: str, logits):
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{fn}: `logits` must be a float array; got dtype {logits.dtype}.")
    if logits.ndim != 3:
        raise ValueError(
            f"{fn}: `logits` must have shape [batch, time, classes]; got shape {logits.shape}."
        )
    if logits.shape[2] < 1:
        raise ValueError(f"{fn}: `logits` must have at least one class; got shape {logits.shape}.")
    return logits


def _check_blank(fn: str, blank_id, num_classes: int) -> int:
    try:
        blank = operator.index(blank_id)
    except TypeError:
        raise TypeError(
            f"{fn}: `blank_id` must be a Python int; got {type(blank_id).__name__}."
        ) from None
    if not -num_classes <= blank < num_classes:
        raise ValueError(
            f"{fn}: `blank_id` must be in [-{num_classes}, {num_classes}) for {num_classes} "
            f"classes; got {blank_id}."
        )
    return blank % num_classes


def _lengths(fn: str, name: str, lengths, batch: int, maximum: int) -> jax.Array:
    if lengths is None:
        return jnp.full((batch,), maximum, jnp.int32)
    lengths = _check_int_array(fn, name, lengths, 1, batch)
    return jnp.clip(lengths.astype(jnp.int32), 0, maximum)


def _check_labelled(fn: str, logits, labels, logit_lengths, label_lengths, blank_id):
    """The checks every kernel over ``(logits, labels)`` shares, in one place."""
    logits = _check_logits(fn, logits)
    batch, time, num_classes = logits.shape
    labels = _check_int_array(fn, "labels", labels, 2, batch)
    blank = _check_blank(fn, blank_id, num_classes)
    logit_lengths = _lengths(fn, "logit_lengths", logit_lengths, batch, time)
    label_lengths = _lengths(fn, "label_lengths", label_lengths, batch, labels.shape[1])
    return logits, labels, logit_lengths, label_lengths, blank


def _compute_dtype(dtype):
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


# --------------------------------------------------------------------------------------------
# The recursions
# --------------------------------------------------------------------------------------------


def _lae(a, b):
    """logaddexp for finite inputs: one exp and one log (no -inf: see ``_NEG``).

    Differentiable (``maximum``/``minimum`` split a tie's derivative half and half); used by the
    forward recursion, which :func:`ctc_loss_jvp` differentiates."""
    hi = jnp.maximum(a, b)
    return hi + jnp.log(1.0 + jnp.exp(jnp.minimum(a, b) - hi))


def _lae2_fast(a, b):
    """Base-2 :func:`_lae_fast`: ``log2(2**a + 2**b)``, for the recursions of :func:`ctc_loss`
    (which nothing differentiates)."""
    d = a - b
    return jnp.where(d > 0, a, b) + jnp.log2(1.0 + jnp.exp2(-jnp.abs(d)))


def _lae_fast(a, b):
    """:func:`_lae` with selects instead of NaN-aware max/min (~10% faster on CPU). Its autodiff
    derivative is wrong at exact ties, so it is only used where nothing differentiates it: the
    recursions of :func:`jaxloss.ops.rnnt_loss`, whose gradient is the hand-written one
    (:func:`ctc_loss` uses its base-2 twin :func:`_lae2_fast`)."""
    d = a - b
    return jnp.where(d > 0, a, b) + jnp.log(1.0 + jnp.exp(-jnp.abs(d)))


def _pad_front(x):
    """[_NEG, x[:, 0], ..., x[:, -1]]: the state one below, for every state."""
    return jnp.concatenate([jnp.full((x.shape[0], 1), _NEG, x.dtype), x], axis=1)


def _frame(logits, t):
    return lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)


def _emissions(logits, shift, lab, blank: int, time_major_gather: bool = True):
    """Emission scores of every frame, time-major for the scans: blank [T, B, 1] and labels
    [T, B, N], each the logit minus its frame's ``shift`` [B, T] (the logsumexp gives
    log-probabilities) and >= _NEG (a logit of -inf, a masked class, becomes the sentinel).

    ``time_major_gather=False`` gathers [B, T, N] and transposes: for autodiff, whose transpose
    of the time-major gather keeps more."""
    if not time_major_gather:
        shift = shift[:, :, None]
        e_blank = jnp.maximum(logits[:, :, blank : blank + 1] - shift, _NEG)
        e_label = jnp.take_along_axis(logits, lab[:, None, :], axis=2, mode="clip")
        e_label = jnp.maximum(e_label - shift, _NEG)
        return jnp.transpose(e_blank, (1, 0, 2)), jnp.transpose(e_label, (1, 0, 2))
    batch, time, num_classes = logits.shape
    shift_t = jnp.transpose(shift)[:, :, None]  # [T, B, 1]
    e_blank = jnp.maximum(jnp.transpose(logits[:, :, blank])[:, :, None] - shift_t, _NEG)
    # One gather straight into the time-major layout: gathering [B, T, N] and then transposing
    # keeps two copies alive at once (a quarter of the temp memory at 28 classes).
    rows = jnp.arange(batch)[None, :, None]
    frames = jnp.arange(time)[:, None, None]
    classes = jnp.clip(lab, 0, num_classes - 1)[None, :, :]
    e_label = jnp.maximum(logits[rows, frames, classes] - shift_t, _NEG)
    return e_blank, e_label


# log2(1 + u) = u * q(u) on [0, 1] for the CPU recursion (see "Polynomials" in the module
# docstring): a least-squares Chebyshev fit in float64, converted to monomial coefficients; within
# 1.7e-7 of the float64 value (XLA's log2(1 + u): 1.5e-7).
_LOG2_1P_Q = (
    1.442694902420044,
    -0.7213367819786072,
    0.4806484282016754,
    -0.3581583797931671,
    0.2749192714691162,
    -0.19597473740577698,
    0.1118670180439949,
    -0.04214145988225937,
    0.0074818129651248455,
)


def _lae_and_weight(a, b, scratch=None):
    """Base-2 ``logaddexp(a, b)`` (as :func:`_lae2_fast`), its derivative with respect to ``a``,
    and ``scratch``.

    With ``u = 2**(-|a - b|)``, ``log2(2**a + 2**b) = max + log2(1 + u)`` and the share of the
    sum that came from ``a`` is ``1 / (1 + u)`` when ``a`` is the larger, ``u / (1 + u)``
    otherwise: one division from what the step computes anyway (``1 - w`` is ``b``'s share).
    Exactly 1 or 0 when the other argument is the ``_NEG`` sentinel.

    With a ``scratch`` buffer ``[2, ...]`` (XLA:CPU, float32), ``2**x`` and ``log2(1 + u)`` are
    the float32 polynomials and the sum is written into row 0 of ``scratch`` (a whole-array update
    would be simplified away): XLA:CPU counts a fused loop whose flops exceed its bytes as
    compute-bound and splits it over its threads, which costs a small step more than the
    polynomials save, and it never splits a fusion that ends in a ``dynamic_update_slice``.
    """
    d = a - b
    up = d > 0
    if scratch is None:
        u = jnp.exp2(-jnp.abs(d))
        total = jnp.where(up, a, b) + jnp.log2(1.0 + u)
    else:
        u = exp2_neg(-jnp.abs(d))
        total = jnp.where(up, a, b) + u * horner(_LOG2_1P_Q, u)
        scratch = lax.dynamic_update_index_in_dim(scratch, total, 0, 0)
        total = scratch[0]
    return total, jnp.where(up, 1.0, u) / (1.0 + u), scratch


def _alpha_scan(logits, lab, skip, logit_lengths, blank: int, *, store: str | None, fast=True):
    """Forward recursion over all frames.

    Returns the alphas after each row's last valid frame (blank [B, N+1], label [B, N]), the
    per-frame tables that ``store`` asks for (``None``: none), lse [B, T] and an offset:

    * ``store="alphas"``: the alphas after every frame (blank [T, B, N+1], label [T, B, N]);
    * ``store="weights"``: each step's transition weights (:func:`_lae_and_weight`), for the
      blank update ``P = lae(blank_i, label_{i-1})`` ([T, B, N+1]) and the label update
      ``lae(label_i, P_i or blank_i)`` ([T, B, N]): all :func:`_ctc_core_bwd` needs.

    ``fast=True`` (the custom-VJP kernel) works in base 2: the emissions, the alphas and the
    log-likelihood are log2-probabilities (the weights are shares, the same in any base).
    ``fast=False`` uses natural logs and the autodiff-safe :func:`_lae` (for
    :func:`ctc_loss_jvp` and :func:`ctc_forward_variables`).

    With ``store="weights"`` the emissions are the logits less their frame's maximum rather than
    their logsumexp (see "Off the loop's path" in the module docstring): the offset [B] is what
    the log2-likelihood of the returned alphas exceeds the true one by. ``None`` otherwise.
    """
    lae = _lae2_fast if fast else _lae
    batch, time, _ = logits.shape
    n = lab.shape[1]
    dtype = logits.dtype
    valid = jnp.arange(time)[:, None] < logit_lengths[None, :]  # [T, B]
    lse = jax.nn.logsumexp(logits, axis=2)
    if store == "weights":
        top = jnp.max(logits, axis=2)
        shift = jnp.where(jnp.isfinite(top), top, 0.0)
    else:
        shift = lse
    e_blank, e_label = _emissions(logits, shift, lab, blank, time_major_gather=fast)
    if fast:
        e_blank = jnp.maximum(e_blank * _LOG2E, _NEG)
        e_label = jnp.maximum(e_label * _LOG2E, _NEG)
    poly = fast and use_polynomials(dtype)

    def body(carry, xs):
        (a_blank, a_label), scratch = carry
        e_blank, e_label, valid_t = xs
        # P[i]: reach blank i from blank i or label i-1; the skip i-2 -> i of label i adds P too.
        q_from = _pad_front(a_label)
        if poly or store == "weights":
            p, w_p, s_p = _lae_and_weight(a_blank, q_from, scratch[0] if poly else None)
            q = jnp.where(skip, p[:, :n], a_blank[:, :n])
            stay, w_l, s_l = _lae_and_weight(a_label, q, scratch[1] if poly else None)
            scratch = (s_p, s_l) if poly else scratch
        else:
            p = lae(a_blank, q_from)
            stay = lae(a_label, jnp.where(skip, p[:, :n], a_blank[:, :n]))
        new_blank = jnp.where(valid_t[:, None], e_blank + p, a_blank)
        new_label = jnp.where(valid_t[:, None], e_label + stay, a_label)
        out = None
        if store == "alphas":
            out = (new_blank, new_label)
        elif store == "weights":
            out = (w_p, w_l)
        return ((new_blank, new_label), scratch), out

    init = (
        jnp.full((batch, n + 1), _NEG, dtype).at[:, 0].set(0.0),
        jnp.full((batch, n), _NEG, dtype),
    )
    scratch = (jnp.zeros((2, batch, n + 1), dtype), jnp.zeros((2, batch, n), dtype)) if poly else ()
    # Inside shard_map the carry must vary over the same mesh axes as the emissions.
    init, scratch = jax.tree.map(lambda x: vary_like(x, e_blank, e_label, valid), (init, scratch))
    (last, _), tables = lax.scan(
        body, (init, scratch), (e_blank, e_label, valid), unroll=scan_unroll()
    )
    offset = None
    if store == "weights":
        # Reduced from the loop's result (times zero), so that XLA keeps lse and the shift alive
        # through the loop: it would otherwise give their buffers to the loop's temporaries, and
        # the loop would wait for the passes that read them.
        tie = 0.0 * last[0][:, :1]
        offset = jnp.sum(jnp.where(valid.T, lse - shift + tie, 0.0), axis=1) * _LOG2E
    return last, tables, lse, offset


def _log_likelihood(a_blank, a_label, label_lengths, base2=False):
    """logaddexp of the two final states: the last label and the blank after it (both alphas and
    the result in base 2 with ``base2=True``)."""
    final_blank = jnp.take_along_axis(a_blank, label_lengths[:, None], axis=1)[:, 0]
    if a_label.shape[1] == 0:
        return final_blank
    last = jnp.take_along_axis(a_label, jnp.maximum(label_lengths - 1, 0)[:, None], axis=1)[:, 0]
    return (_lae2_fast if base2 else _lae)(final_blank, jnp.where(label_lengths >= 1, last, _NEG))


def _from_log2(ll):
    """A base-2 log-likelihood in nats (the ``_NEG`` sentinel stays the sentinel)."""
    return jnp.where(ll < _NEG / 2, ll, ll * _LN2)


def _loss_from_ll(ll):
    """+inf where no alignment has non-zero probability, else -ll clamped at 0."""
    return jnp.where(ll < _NEG / 2, jnp.inf, jnp.maximum(-ll, 0.0))


def _ctc_forward(logits, lab, skip, logit_lengths, label_lengths, blank, fast=True):
    (a_blank, a_label), _, _, _ = _alpha_scan(
        logits, lab, skip, logit_lengths, blank, store=None, fast=fast
    )
    ll = _log_likelihood(a_blank, a_label, label_lengths, base2=fast)
    return _loss_from_ll(_from_log2(ll) if fast else ll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _ctc_core(logits, lab, skip, logit_lengths, label_lengths, blank):
    return _ctc_forward(logits, lab, skip, logit_lengths, label_lengths, blank)


def _ctc_core_fwd(logits, lab, skip, logit_lengths, label_lengths, blank):
    (a_blank, a_label), weights, lse, offset = _alpha_scan(
        logits, lab, skip, logit_lengths, blank, store="weights"
    )
    ll = _log_likelihood(a_blank, a_label, label_lengths, base2=True)
    # The final logaddexp's share for the blank after the last label (the rest is the label's):
    # ll is that logaddexp, at least its blank argument, so this is in [0, 1] in every row.
    final_blank = jnp.take_along_axis(a_blank, label_lengths[:, None], axis=1)[:, 0]
    w_final = jnp.exp2(final_blank - ll)
    ll = jnp.where(ll < _NEG / 2, ll, ll - offset)
    ll = _from_log2(ll)
    res = (logits, lab, skip, logit_lengths, label_lengths, weights, w_final, lse, ll)
    return _loss_from_ll(ll), res


def _row_sum(x):
    """Sum over the last axis, folded to at most 32 columns first: XLA:CPU splits a longer row
    reduction into two kernels (partial sums over windows of 32, then their sum), and a loop
    step pays for each kernel it runs."""
    while x.shape[1] > 32:
        half = (x.shape[1] + 1) // 2
        x = x[:, :half] + jnp.pad(x[:, half:], ((0, 0), (0, 2 * half - x.shape[1])))
    return jnp.sum(x, axis=1)


def _ctc_core_bwd(blank, res, g):
    """The occupancies from the forward's transition weights, with multiply-adds only.

    The occupancy ``gamma_t`` (posterior of each state at frame ``t``) is the derivative of the
    log-likelihood with respect to that state's alpha at ``t``; it starts as the final
    logaddexp's split between the two end states and runs back through each step's adjoint: a
    state's share flows to its predecessors in proportion to the weights the forward stored
    (what autodiff of the log-space recursion computes too, without any ``exp`` or ``log`` per
    step). Frames past a row's length pass it through unchanged. Each frame's occupancies are
    subtracted from the gradient buffer, which starts as every frame's softmax.
    """
    logits, lab, skip, logit_lengths, label_lengths, weights, w_final, lse, ll = res
    w_p_t, w_l_t = weights
    batch, time, _ = logits.shape
    n = lab.shape[1]
    dtype = logits.dtype
    infeasible = ll < _NEG / 2
    g = jnp.where(infeasible, 0.0, g).astype(dtype)
    skip_f = skip.astype(dtype)
    t_idx = jnp.arange(time)
    valid = t_idx[:, None] < logit_lengths[None, :]  # [T, B]
    rows = jnp.arange(batch)[:, None]
    zero = jnp.zeros((batch, 1), dtype)

    def body(carry, xs):
        g_blank, g_label, grad = carry  # occupancies at frame t (all frames past the row's end)
        t, w_p, w_l, valid_t = xs
        v = valid_t[:, None]
        # the frame's occupancies, normalised: their total is 1 up to rounding on a valid frame
        blank_total = _row_sum(g_blank)
        total = blank_total + _row_sum(g_label)
        scale = jnp.where(valid_t & (total > 0), g / jnp.maximum(total, 1e-30), 0.0)
        grad_t = _frame(grad, t) * jnp.where(valid_t, g, 0.0)[:, None]
        grad_t = grad_t.at[rows, lab].add(-g_label * scale[:, None], mode="drop")
        grad_t = grad_t.at[:, blank].add(-blank_total * scale)
        grad = lax.dynamic_update_index_in_dim(grad, grad_t, t, axis=1)
        # back through step t: label i = lae(label_i, Q_i), Q_i = P_i if skip_i else blank_i,
        # blank i = P_i = lae(blank_i, label_{i-1})
        to_q = (1.0 - w_l) * g_label
        g_p = g_blank + jnp.concatenate([to_q * skip_f, zero], axis=1)
        prev_label = w_l * g_label + ((1.0 - w_p) * g_p)[:, 1:]
        prev_blank = w_p * g_p + jnp.concatenate([to_q * (1.0 - skip_f), zero], axis=1)
        g_blank = jnp.where(v, prev_blank, g_blank)
        g_label = jnp.where(v, prev_label, g_label)
        return (g_blank, g_label, grad), None

    cols_b = jnp.arange(n + 1)[None, :]
    cols_l = jnp.arange(n)[None, :]
    init = (
        jnp.where(cols_b == label_lengths[:, None], w_final[:, None], 0.0).astype(dtype),
        jnp.where(cols_l == label_lengths[:, None] - 1, 1.0 - w_final[:, None], 0.0).astype(dtype),
        # Every frame's softmax in one vectorised pass; the scan scales each frame by the
        # cotangent and subtracts its occupancies. Independent of the cotangent, so XLA can run
        # it during the forward loop, on the other core.
        jnp.exp(logits - lse[:, :, None]),
    )
    xs = (t_idx, w_p_t, w_l_t, valid)
    init = tuple(vary_like(x, logits, *jax.tree.leaves(xs)) for x in init)
    (_, _, grad), _ = lax.scan(body, init, xs, reverse=True, unroll=scan_unroll())
    return grad, None, None, None, None


_ctc_core.defvjp(_ctc_core_fwd, _ctc_core_bwd)


# --------------------------------------------------------------------------------------------
# Public loss
# --------------------------------------------------------------------------------------------


def _prepare_labels(labels, label_lengths, blank: int):
    """Labels with the padding replaced by the blank, and the skip mask: label i can be entered
    from label i-1 directly (skipping the blank between) iff the two differ."""
    batch, n = labels.shape
    lab = jnp.where(
        jnp.arange(n)[None, :] < label_lengths[:, None], labels.astype(jnp.int32), blank
    )
    skip = jnp.concatenate([jnp.zeros((batch, min(n, 1)), bool), lab[:, 1:] != lab[:, :-1]], 1)
    return lab, skip


def ctc_loss(
    logits,
    labels,
    *,
    logit_lengths=None,
    label_lengths=None,
    blank_id: int = 0,
    zero_infinity: bool = False,
) -> jax.Array:
    """Per-sequence CTC negative log-likelihood.

    Args:
      logits: ``[batch, time, classes]`` unnormalised scores (log-softmax is applied here). Any
        float dtype; the math runs in float32 and the gradient comes back in this dtype.
      labels: ``[batch, max_label_len]`` integer targets, padded past each row's length with any
        value. Repeated labels are allowed (an alignment puts a blank between them).
      logit_lengths: ``[batch]`` valid frames per row (default: all ``time``). Frames past it
        get a zero gradient.
      label_lengths: ``[batch]`` valid labels per row (default: all ``max_label_len``); ``0`` is
        the empty target.
      blank_id: class index of the blank, a Python int in ``[-classes, classes)``.
      zero_infinity: return ``0`` instead of ``+inf`` for targets with no feasible alignment
        (longer, counting the blanks needed between repeats, than their input). Either way their
        gradient is zero.

    Returns:
      ``[batch]`` losses in the compute dtype (float32 unless the logits are float64), each
      ``>= 0`` or ``+inf``.

    Differentiated by the hand-written beta recursion (``jax.custom_vjp``), so ``jax.grad`` works
    and forward mode does not: use :func:`ctc_loss_jvp` for ``jax.jvp`` / ``jax.hessian``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops import ctc_loss
      >>> logits = jnp.zeros((2, 4, 3))  # uniform over 3 classes, blank 0
      >>> labels = jnp.array([[1, 2], [1, 1]])
      >>> print(ctc_loss(logits, labels))  # -log(15 / 3**4), -log(5 / 3**4): 15 and 5 alignments
      [1.686 2.785]
      >>> print(ctc_loss(logits, labels, logit_lengths=jnp.array([4, 2])))  # [1, 1] needs 3 frames
      [1.686   inf]
    """
    return _ctc_entry(
        "ctc_loss",
        logits,
        labels,
        logit_lengths,
        label_lengths,
        blank_id,
        zero_infinity,
        custom_vjp=True,
    )


def ctc_loss_jvp(
    logits,
    labels,
    *,
    logit_lengths=None,
    label_lengths=None,
    blank_id: int = 0,
    zero_infinity: bool = False,
) -> jax.Array:
    """:func:`ctc_loss` with forward-mode autodiff: same signature, same values.

    No custom rule: JAX differentiates the alpha recursion itself, so ``jax.jvp``,
    ``jax.jacfwd``, ``jax.hessian`` and Hessian-vector products work. Its reverse mode stores the
    scan's residuals (as optax's CTC does); for plain gradients use :func:`ctc_loss`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss.ops import ctc_loss_jvp
      >>> logits, labels = jnp.zeros((1, 4, 3)), jnp.array([[1, 2]])
      >>> value, tangent = jax.jvp(lambda z: ctc_loss_jvp(z, labels), (logits,), (logits + 1,))
      >>> tangent  # shifting every logit by the same amount changes nothing
      Array([0.], dtype=float32)
    """
    return _ctc_entry(
        "ctc_loss_jvp",
        logits,
        labels,
        logit_lengths,
        label_lengths,
        blank_id,
        zero_infinity,
        custom_vjp=False,
    )


def ctc_forward_variables(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    logit_lengths: ArrayLike | None = None,
    label_lengths: ArrayLike | None = None,
    blank_id: int = 0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The CTC loss with its forward variables: the log-alphas of every frame and state.

    With ``z`` the labels and ``p_t`` the log-softmax of frame ``t``, the blank-extended lattice
    has a blank state ``n`` (``n`` labels emitted, now in a blank) for ``0 <= n <= N`` and a
    label state ``n`` (now emitting ``z_n``) for ``0 <= n < N``; with ``P_t(n) =
    logaddexp(B_{t-1}(n), L_{t-1}(n-1))``:

    .. math::

        B_t(n) = p_t(\\text{blank}) + P_t(n), \\qquad
        L_t(n) = p_t(z_n) + \\operatorname{logaddexp}\\big(L_{t-1}(n),\\
        P_t(n) \\text{ if } z_n \\ne z_{n-1} \\text{ else } B_{t-1}(n)\\big),

    from ``B_{-1}(0) = 0`` (every other state ``-inf``); the loss is ``-logaddexp(B_{T-1}(N),
    L_{T-1}(N-1))`` with ``T`` and ``N`` the row's lengths. This is the forward pass of
    :func:`ctc_loss`, with the tables kept and no custom rule, so every output is
    differentiable by JAX's autodiff (reverse and forward mode), as :func:`ctc_loss_jvp` is.
    For the loss alone use :func:`ctc_loss`: it keeps no ``[time, batch, labels]`` output and
    its hand-written gradient is faster.

    Args:
      logits: ``[batch, time, classes]`` unnormalised scores (log-softmax is applied here).
      labels: ``[batch, max_label_len]`` integer targets, padded past each row's length with any
        value.
      logit_lengths: ``[batch]`` valid frames per row (default: all ``time``).
      label_lengths: ``[batch]`` valid labels per row (default: all ``max_label_len``).
      blank_id: class index of the blank, a Python int in ``[-classes, classes)``.

    Returns:
      ``(loss, log_alpha_blank, log_alpha_label)``: ``loss`` ``[batch]`` as :func:`ctc_loss`
      (``+inf`` for an infeasible target); ``log_alpha_blank`` ``[time, batch, N+1]`` is
      ``B_t(n)`` and ``log_alpha_label`` ``[time, batch, N]`` is ``L_t(n)``, in the compute dtype
      (float32 unless the logits are float64), ``-inf`` for unreachable states.

    Raises:
      TypeError: ``logits`` not floating, ``labels`` or a length not integer, ``blank_id`` not
        an int.
      ValueError: a wrong rank, a batch size that differs from the logits', ``blank_id`` out of
        range.

    Notes:
      Frames past a row's ``logit_length`` repeat its last frame's alphas. The labels past a
      row's ``label_length`` are read as the blank, so the states after the row's last label
      describe that lattice, not the padding values. A label outside ``[0, classes)`` within
      the row's length gives the row a NaN loss (its alphas are then meaningless).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops import ctc_forward_variables
      >>> logits = jnp.zeros((1, 2, 3))  # uniform over 3 classes; blank 0
      >>> loss, blank, label = ctc_forward_variables(logits, jnp.array([[1]]))
      >>> print(loss)  # 3 alignments of label 1 in 2 frames: -log(3 / 9)
      [1.099]
      >>> # probabilities x 9 at frames 0 and 1: blank states n = 0, 1 and label state 0
      >>> print((jnp.exp(blank[:, 0]) * 9).round(), (jnp.exp(label[:, 0]) * 9).round())
      [[3. 0.]
       [1. 1.]] [[3.]
       [2.]]
    """
    fn = "ctc_forward_variables"
    logits, labels, logit_lengths, label_lengths, blank = _check_labelled(
        fn, logits, labels, logit_lengths, label_lengths, blank_id
    )
    return _forward_variables(logits, labels, logit_lengths, label_lengths, blank)


@functools.partial(jax.jit, static_argnums=(4,))
def _forward_variables(logits, labels, logit_lengths, label_lengths, blank):
    lab, skip = _prepare_labels(labels, label_lengths, blank)
    out_of_range = jnp.any((lab < 0) | (lab >= logits.shape[2]), axis=1)
    x = logits.astype(_compute_dtype(logits.dtype))
    (a_blank, a_label), (table_blank, table_label), _, _ = _alpha_scan(
        x, lab, skip, logit_lengths, blank, store="alphas", fast=False
    )
    loss = _loss_from_ll(_log_likelihood(a_blank, a_label, label_lengths))
    # the finite sentinel stays internal: unreachable states are reported as log(0)
    table_blank = jnp.where(table_blank < _NEG / 2, -jnp.inf, table_blank)
    table_label = jnp.where(table_label < _NEG / 2, -jnp.inf, table_label)
    return jnp.where(out_of_range, jnp.nan, loss), table_blank, table_label


def _ctc_entry(
    fn, logits, labels, logit_lengths, label_lengths, blank_id, zero_infinity, *, custom_vjp
):
    logits, labels, logit_lengths, label_lengths, blank = _check_labelled(
        fn, logits, labels, logit_lengths, label_lengths, blank_id
    )

    loss = _ctc_loss(logits, labels, logit_lengths, label_lengths, blank, custom_vjp)
    if zero_infinity:
        loss = jnp.where(jnp.isinf(loss), 0.0, loss)
    return loss


@functools.partial(jax.jit, static_argnums=(4, 5))
def _ctc_loss(logits, labels, logit_lengths, label_lengths, blank, custom_vjp):
    lab, skip = _prepare_labels(labels, label_lengths, blank)
    num_classes = logits.shape[2]
    out_of_range = jnp.any((lab < 0) | (lab >= num_classes), axis=1)
    x = logits.astype(_compute_dtype(logits.dtype))
    if custom_vjp:
        # The label states in whole multiples of 8: XLA:CPU runs a step's loops over a row of
        # states much faster then (L=31 took 1.3-1.6x the time of L=32). The added states lie
        # past every row's label length, so no alignment of any row ends through them.
        pad = -lab.shape[1] % 8
        lab = jnp.pad(lab, ((0, 0), (0, pad)), constant_values=blank)
        skip = jnp.pad(skip, ((0, 0), (0, pad)))
        loss = _ctc_core(x, lab, skip, logit_lengths, label_lengths, blank)
    else:
        loss = _ctc_forward(x, lab, skip, logit_lengths, label_lengths, blank, fast=False)
    return jnp.where(out_of_range, jnp.nan, loss)


# --------------------------------------------------------------------------------------------
# Forced alignment
# --------------------------------------------------------------------------------------------


class CTCAlignment(NamedTuple):
    """The most likely alignment of each row (:func:`ctc_align`); a pytree of four arrays."""

    frames: jax.Array
    """``[batch, time]`` int32: the position in ``labels`` of the label frame ``t`` emits, or
    ``-1`` where it emits the blank (and past the row's ``logit_length``)."""
    starts: jax.Array
    """``[batch, max_label_len]`` int32: the first frame of each label, ``-1`` past the row's
    ``label_length``."""
    ends: jax.Array
    """``[batch, max_label_len]`` int32: the last frame of each label (inclusive), ``-1`` past
    the row's ``label_length``."""
    scores: jax.Array
    """``[batch]``: the log-probability of that alignment (``-inf`` where none exists)."""


def ctc_align(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    logit_lengths: ArrayLike | None = None,
    label_lengths: ArrayLike | None = None,
    blank_id: int = 0,
) -> CTCAlignment:
    """Forced alignment: the single most likely CTC path of each row that spells its labels.

    The Viterbi recursion over the same blank-extended lattice as :func:`ctc_loss`, with ``max``
    in place of ``logsumexp``:

    .. math::

        \\delta_t(s) = \\log p_t(z_s) + \\max\\big(\\delta_{t-1}(s), \\delta_{t-1}(s-1),
        [z_s \\ne \\text{blank},\\ z_s \\ne z_{s-2}]\\ \\delta_{t-1}(s-2)\\big),

    then a back-trace from the better of the two final states. The path's label of frame ``t``
    is reported as its position in ``labels`` (not its class), so two occurrences of the same
    class stay apart; its class is ``labels[b, frames[b, t]]`` where ``frames >= 0``.

    Args:
      logits: ``[batch, time, classes]`` unnormalised scores (log-softmax is applied here).
      labels: ``[batch, max_label_len]`` integer targets, padded past each row's length with any
        value.
      logit_lengths: ``[batch]`` valid frames per row (default: all ``time``).
      label_lengths: ``[batch]`` valid labels per row (default: all ``max_label_len``).
      blank_id: class index of the blank, a Python int in ``[-classes, classes)``.

    Returns:
      A :class:`CTCAlignment` ``(frames, starts, ends, scores)``: per-frame label positions
      (``-1`` for blank frames), each label's first and last frame, and the path's
      log-probability (float32 unless the logits are float64).

    Raises:
      TypeError: ``logits`` not floating, ``labels`` or a length not integer, ``blank_id`` not
        an int.
      ValueError: a wrong rank, a batch size that differs from the logits', ``blank_id`` out of
        range.

    Notes:
      A row whose labels cannot fit its frames (counting the blanks needed between repeats) or
      whose every path crosses a logit of ``-inf`` has no alignment: ``frames``, ``starts`` and
      ``ends`` are all ``-1`` and ``scores`` is ``-inf``. A label outside ``[0, classes)`` within
      its row's length gives that row the same ``-1`` arrays and a NaN score; other rows are
      unaffected. Ties between equally likely paths go to the one that stays longest in earlier
      states. Runs under ``jit`` and ``vmap``; nothing here is differentiated.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops import ctc_align
      >>> # frames favour: blank, 1, 1, blank, 2 (class 0 is the blank)
      >>> logits = jnp.log(jnp.array([[[.8, .1, .1], [.1, .8, .1], [.1, .8, .1],
      ...                              [.8, .1, .1], [.1, .1, .8]]]))
      >>> a = ctc_align(logits, jnp.array([[1, 2]]))
      >>> print(a.frames, a.starts, a.ends)
      [[-1  0  0 -1  1]] [[1 4]] [[2 4]]
      >>> print(a.scores)  # log(0.8 ** 5)
      [-1.116]
    """
    fn = "ctc_align"
    logits, labels, logit_lengths, label_lengths, blank = _check_labelled(
        fn, logits, labels, logit_lengths, label_lengths, blank_id
    )
    return _align(logits, labels, logit_lengths, label_lengths, blank)


@functools.partial(jax.jit, static_argnums=(4,))
def _align(logits, labels, logit_lengths, label_lengths, blank):
    batch, time, num_classes = logits.shape
    n = labels.shape[1]
    lab, skip = _prepare_labels(labels, label_lengths, blank)
    out_of_range = jnp.any((lab < 0) | (lab >= num_classes), axis=1)
    # The 2n+1 blank-extended states in one array (the Viterbi pass is not the hot path).
    ext = jnp.full((batch, 2 * n + 1), blank, jnp.int32).at[:, 1::2].set(lab)
    ext_skip = jnp.zeros((batch, 2 * n + 1), bool).at[:, 1::2].set(skip)
    logp = jax.nn.log_softmax(logits.astype(_compute_dtype(logits.dtype)), axis=2)
    emit = jnp.take_along_axis(logp, ext[:, None, :], axis=2, mode="clip")
    emit = jnp.transpose(jnp.maximum(emit, _NEG), (1, 0, 2))  # [T, B, S]
    valid = jnp.arange(time)[:, None] < logit_lengths[None, :]
    neg = lambda k: jnp.full((batch, k), _NEG, emit.dtype)

    def forward(delta, xs):
        emit_t, valid_t = xs
        stay, step = delta, jnp.concatenate([neg(1), delta[:, :-1]], axis=1)
        jump = jnp.where(ext_skip, jnp.concatenate([neg(2), delta[:, :-2]], axis=1), _NEG)
        back = jnp.where(step > stay, 1, 0)
        best = jnp.maximum(stay, step)
        back = jnp.where(jump > best, 2, back)
        best = jnp.maximum(best, jump)
        delta = jnp.where(valid_t[:, None], emit_t + best, delta)
        return delta, jnp.where(valid_t[:, None], back, 0).astype(jnp.int8)

    init = jnp.full((batch, 2 * n + 1), _NEG, emit.dtype).at[:, 0].set(0.0)
    init = vary_like(init, emit, valid)
    delta, backs = lax.scan(forward, init, (emit, valid))

    end_blank = jnp.take_along_axis(delta, 2 * label_lengths[:, None], axis=1)[:, 0]
    end_label = jnp.take_along_axis(delta, jnp.maximum(2 * label_lengths - 1, 0)[:, None], 1)[:, 0]
    end_label = jnp.where(label_lengths >= 1, end_label, _NEG)
    state = jnp.where(end_label > end_blank, 2 * label_lengths - 1, 2 * label_lengths)
    score = jnp.maximum(end_label, end_blank)

    def backward(state, back_t):
        prev = state - jnp.take_along_axis(back_t, state[:, None], axis=1)[:, 0]
        return prev, state

    _, states = lax.scan(backward, state, backs, reverse=True)  # [T, B]: the state at each frame
    ok = (score > _NEG / 2) & ~out_of_range
    states = jnp.transpose(states)
    frames = jnp.where(
        ok[:, None] & jnp.transpose(valid) & (states % 2 == 1), (states - 1) // 2, -1
    ).astype(jnp.int32)
    hit = frames[:, :, None] == jnp.arange(n, dtype=jnp.int32)[None, None, :]  # [B, T, n]
    t_idx = jnp.arange(time, dtype=jnp.int32)[None, :, None]
    starts = jnp.min(jnp.where(hit, t_idx, time), axis=1)
    ends = jnp.max(jnp.where(hit, t_idx, -1), axis=1)
    starts = jnp.where(starts == time, -1, starts).astype(jnp.int32)
    score = jnp.where(ok, score, -jnp.inf)
    score = jnp.where(out_of_range, jnp.nan, score)
    return CTCAlignment(frames, starts, ends.astype(jnp.int32), score)


# --------------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------------


def _compact(tokens, keep):
    """Move the kept entries of each row to the front (stable), pad the rest with -1."""
    order = jnp.argsort(jnp.where(keep, 0, 1), axis=-1, stable=True)
    out = jnp.take_along_axis(jnp.where(keep, tokens, -1), order, axis=-1)
    return out


def ctc_greedy_decode(
    logits, logit_lengths=None, *, blank_id: int = 0, merge_repeated: bool = True
):
    """Best-path decoding: the most likely class per frame, repeats merged, blanks removed.

    Args:
      logits: ``[batch, time, classes]`` scores (normalised here with log-softmax for the score).
      logit_lengths: ``[batch]`` valid frames per row (default: all).
      blank_id: class index of the blank.
      merge_repeated: merge runs of the same class into one label (as CTC defines), else keep
        every non-blank frame.

    Returns:
      ``(decoded, scores)``: ``decoded`` ``[batch, time]`` int32 labels, front-aligned, padded
      with ``-1``; ``scores`` ``[batch]`` the log-probability of the best path (the sum over
      valid frames of the largest log-softmax). The labels equal ``keras.ops.ctc_decode(...,
      strategy="greedy")[0][0]``; Keras' score is minus the sum of the raw maxima, which is
      ``-scores`` when the logits are already log-probabilities.
    """
    fn = "ctc_greedy_decode"
    logits = _check_logits(fn, logits)
    batch, time, num_classes = logits.shape
    blank = _check_blank(fn, blank_id, num_classes)
    lengths = _lengths(fn, "logit_lengths", logit_lengths, batch, time)
    return _greedy(logits, lengths, blank, bool(merge_repeated))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _greedy(logits, lengths, blank, merge_repeated):
    batch, time, _ = logits.shape
    logp = jax.nn.log_softmax(logits.astype(_compute_dtype(logits.dtype)), axis=2)
    best = jnp.argmax(logp, axis=2).astype(jnp.int32)
    valid = jnp.arange(time)[None, :] < lengths[:, None]
    scores = jnp.sum(jnp.where(valid, jnp.max(logp, axis=2), 0.0), axis=1)
    best = jnp.where(valid, best, blank)
    keep = best != blank
    if merge_repeated:
        prev = jnp.concatenate([jnp.full((batch, 1), -1, jnp.int32), best[:, :-1]], axis=1)
        keep = keep & (best != prev)
    return _compact(best, keep), scores


def _mix(h, x, mult: int, shift: int):
    """One step of a 32-bit multiply-xorshift hash of a sequence (uint32 arithmetic wraps)."""
    h = (h ^ x) * jnp.uint32(mult)
    return h ^ (h >> shift)


def ctc_beam_search_decode(
    logits, logit_lengths=None, *, beam_width: int = 100, top_paths: int = 1, blank_id: int = 0
):
    """Prefix beam search: the ``top_paths`` most likely label sequences under the CTC model.

    Each beam is a label prefix with two log-probabilities, ending in a blank or in its last label;
    each frame extends every beam by every class, merges the candidates that are the same prefix,
    and keeps the ``beam_width`` best. Runs under ``jit`` and ``vmap`` (a ``lax.scan`` over time);
    prefixes are identified by a 64-bit rolling hash (two 32-bit ones), and the labels are read
    back at the end through per-frame back-pointers.

    Args:
      logits: ``[batch, time, classes]`` scores (log-softmax is applied here).
      logit_lengths: ``[batch]`` valid frames per row (default: all).
      beam_width: beams kept per frame (a Python int >= 1).
      top_paths: sequences returned per row, ``1 <= top_paths <= beam_width``.
      blank_id: class index of the blank.

    Returns:
      ``(decoded, scores)``: ``decoded`` ``[batch, top_paths, time]`` int32 labels, front-aligned
      and padded with ``-1``, best first; ``scores`` ``[batch, top_paths]`` their log-probabilities
      (summed over all alignments; ``-inf`` for slots with no sequence). This is the behaviour of
      ``keras.ops.ctc_decode(..., strategy="beam_search")``, whose outputs are
      ``decoded.transpose(1, 0, 2)`` and ``scores``.
    """
    fn = "ctc_beam_search_decode"
    logits = _check_logits(fn, logits)
    batch, time, num_classes = logits.shape
    blank = _check_blank(fn, blank_id, num_classes)
    lengths = _lengths(fn, "logit_lengths", logit_lengths, batch, time)
    for name, value in (("beam_width", beam_width), ("top_paths", top_paths)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{fn}: `{name}` must be an int >= 1; got {value!r}.")
    if top_paths > beam_width:
        raise ValueError(
            f"{fn}: `top_paths` must be <= `beam_width` ({beam_width}); got {top_paths}."
        )
    return _beam_search(logits, lengths, int(beam_width), int(top_paths), blank)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _beam_search(logits, lengths, beam_width, top_paths, blank):
    logp = jax.nn.log_softmax(logits.astype(_compute_dtype(logits.dtype)), axis=2)
    decode = functools.partial(
        _beam_search_one, beam_width=beam_width, top_paths=top_paths, blank=blank
    )
    return jax.vmap(decode)(logp, lengths)


def _beam_search_one(logp, length, *, beam_width: int, top_paths: int, blank: int):
    """Prefix beam search over one sequence ``logp`` [T, C] (log-probabilities)."""
    time, num_classes = logp.shape
    width = beam_width
    neg_inf = jnp.array(-jnp.inf, logp.dtype)
    classes = jnp.arange(num_classes, dtype=jnp.int32)
    is_blank = classes == blank

    # Beam state. Hashes identify prefixes: (h1, h2) of the prefix, (p1, p2) of the prefix without
    # its last label, `last` its last label (-1 for the empty prefix).
    zero_u = jnp.zeros((width,), jnp.uint32)
    state = dict(
        p_b=jnp.full((width,), neg_inf).at[0].set(0.0),  # log P(prefix, ends in blank)
        p_nb=jnp.full((width,), neg_inf),  # log P(prefix, ends in its last label)
        last=jnp.full((width,), -1, jnp.int32),
        h1=zero_u,
        h2=zero_u,
        p1=zero_u,
        p2=zero_u,
    )
    state = jax.tree.map(lambda x: vary_like(x, logp), state)

    def step(state, xs):
        lp, t = xs
        p_b, p_nb, last = state["p_b"], state["p_nb"], state["last"]
        total = jnp.logaddexp(p_b, p_nb)
        lp_blank = lp[blank]
        lp_last = jnp.where(last >= 0, lp[jnp.maximum(last, 0)], neg_inf)

        # Staying on the same prefix: a blank, or a repeat of the last label with no blank between.
        stay_b = total + lp_blank
        stay_nb = p_nb + lp_last
        # Extending prefix w by label c: from either ending, but after a blank only for a repeat.
        same = classes[None, :] == last[:, None]
        ext = jnp.where(same, p_b[:, None], total[:, None]) + lp[None, :]
        ext = jnp.where(is_blank[None, :], neg_inf, ext)  # [W, C]

        # An extension that is already a beam (w' = w + c, found by hash) adds to that beam's
        # non-blank probability instead of becoming a second copy of it.
        match = (state["p1"][None, :] == state["h1"][:, None]) & (
            state["p2"][None, :] == state["h2"][:, None]
        )  # match[w, w']: w is the prefix of w' without its last label
        match &= ((last >= 0) & jnp.isfinite(total))[None, :]
        last_c = jnp.maximum(last, 0)
        into = jnp.where(match, jnp.take(ext, last_c, axis=1), neg_inf)  # [W parent, W' child]
        stay_nb = jnp.logaddexp(stay_nb, jax.nn.logsumexp(into, axis=0))
        merged = jnp.zeros((width, num_classes), bool).at[:, last_c].max(match)
        ext = jnp.where(merged, neg_inf, ext)

        # Candidates: W stays, then W*C extensions; keep the best W by total probability.
        cand_b = jnp.concatenate([stay_b, jnp.full((width * num_classes,), neg_inf)])
        cand_nb = jnp.concatenate([stay_nb, ext.reshape(-1)])
        cand_total = jnp.logaddexp(cand_b, cand_nb)
        _, top = lax.top_k(cand_total, width)
        is_ext = top >= width
        parent = jnp.where(is_ext, (top - width) // num_classes, top)
        label = jnp.where(is_ext, (top - width) % num_classes, -1).astype(jnp.int32)

        h1, h2 = state["h1"][parent], state["h2"][parent]
        u = label.astype(jnp.uint32) + 1
        new = dict(
            p_b=cand_b[top],
            p_nb=cand_nb[top],
            last=jnp.where(is_ext, label, last[parent]),
            h1=jnp.where(is_ext, _mix(h1, u, 0x9E3779B1, 15), h1),
            h2=jnp.where(is_ext, _mix(h2, u, 0xCC9E2D51, 13), h2),
            p1=jnp.where(is_ext, h1, state["p1"][parent]),
            p2=jnp.where(is_ext, h2, state["p2"][parent]),
        )
        keep = t < length
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
        pointer = jnp.where(keep, parent, jnp.arange(width))
        emitted = jnp.where(keep, label, -1)
        return new, (pointer, emitted)

    final, (pointers, emitted) = lax.scan(step, state, (logp, jnp.arange(time)))
    total = jnp.logaddexp(final["p_b"], final["p_nb"])
    scores, order = lax.top_k(total, top_paths)

    # Follow the back-pointers from the last frame to the first, collecting the labels.
    def back(beam, xs):
        pointer, label = xs
        return pointer[beam], label[beam]

    _, labels = lax.scan(back, order, (pointers, emitted), reverse=True)  # [T, top]
    labels = jnp.transpose(labels)
    labels = jnp.where(jnp.isfinite(scores)[:, None], labels, -1)
    decoded = _compact(labels, labels >= 0)
    return decoded, scores
