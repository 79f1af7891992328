"""RNN-T (transducer) loss: the log-likelihood of a label sequence under a joiner's outputs.

``rnnt_loss`` takes the joiner's scores ``[batch, T, U+1, vocab]`` for every (frame, emitted-labels)
pair, as torchaudio's ``rnnt_loss`` does, and sums the probability of every path through the
``T x (U+1)`` lattice (Graves, 2012): from node ``(t, u)`` a path either emits the blank and moves
to frame ``t+1``, or emits label ``u`` and stays at frame ``t``; it ends with a blank from
``(T-1, U)``.

Layout and cost. The blank's and the next label's logits are gathered first (``[batch, T, U+1]``
each); one read of the logits then computes the per-node log-normaliser, ``logsumexp`` over the
vocabulary shifted by the larger of those two logits (so the shifted sum is at least 1; where it
overflows, a class beating both by more than ~88 nats, the usual max-then-sum passes run
instead, so the result is exact either way). Nothing else reads the ``[batch, T, U+1, vocab]``
array until the gradient. Every path crosses each anti-diagonal ``d = t + u`` exactly once, so the
log-space alpha recursion runs as one ``lax.scan`` over the ``T + U`` anti-diagonals, all of a
diagonal's nodes at once (both predecessors of a node lie on the previous diagonal); the tables
are stored skewed, ``[T + U, batch, U+1]``, so each step reads one contiguous row. (A scan over
``t`` with the ``u`` recursion as a ``cumlogsumexp`` was measured about 50x slower on CPU, and it
loses the size of the cumulative label log-probabilities times eps to cancellation.) The lattice
is a few percent of the cost; the two passes over the logits (the forward's normaliser, the
backward's gradient) are the rest, against autodiff's five or more (the log-softmax, its
transpose, the gathers' transposes), and autodiff's backward holds a ``[batch, T, U+1, vocab]``
temporary besides the gradient (its compiled temp memory is the size of the logits), this one
nothing that size. Measured on a 2-core CPU: the one-read normaliser took the kernel from 1.8x to
2.4x the plain autodiff version's speed at B=4, T=500, U=100, V=1024; XLA:CPU runs the
normaliser's reduction about 3x slower when the ``log`` is fused into it as an epilogue, so the
``log`` is taken inside the ``lax.cond``'s branch. On a GPU both diagonal scans run 16 steps per
loop iteration (``_common.SCAN_UNROLL``): 3.75 to 1.21 ms at B=8, T=200, U=50, V=256 on an H200.

Backward. A hand-written ``jax.custom_vjp``: the beta recursion runs over the diagonals in reverse
and yields, per node, the probability that a path leaves it by a blank (``p_blank``) or by its
label (``p_label``). Those sum to the node's occupancy, and on every diagonal the occupancies sum
to 1: they are normalised per diagonal, which divides out the rounding that
``alpha + beta - log-likelihood`` shares across it. The gradient with respect to the logits is then
one vectorised pass, ``softmax * occupancy - p_blank [v = blank] - p_label [v = label]``, with
the two indicator terms as ``iota == index`` selects inside the same loop (no scatter, no one-hot),
so the only ``[batch, T, U+1, vocab]`` array the backward builds is the gradient itself. On XLA:CPU
in float32 that pass's ``exp`` is the float32 polynomial of ``_common.exp2_neg`` (as accurate as
XLA's, at about half its cost, the pass's main arithmetic): the value and gradient took about 0.83
of the time with it (81 against 98 ms at B=8, T=200, U=50, V=256). The same polynomial in the
forward's normaliser made that reduction about 4x slower, and ``exp2`` there was no faster.

Numerics and edge cases. ``log(0)`` is the finite sentinel of :mod:`jaxloss.ops.ctc`. A row with
``logit_length == 0``, or whose every path crosses a logit of ``-inf``, has no path: its loss is
``+inf`` and its gradient zero. ``label_length == 0`` is the empty target (``T`` blanks). Every
other loss is clamped at 0 from below. Logits of any float dtype are computed in float32 (float64
stays float64); the gradient comes back in the logits' dtype. A label outside ``[0, vocab)``
within its row's length gives that row a NaN loss and a zero gradient; labels past a row's length
are ignored. Lengths are clipped to ``[0, max]``.

Forward-mode autodiff. ``jax.custom_vjp`` blocks ``jax.jvp``; :func:`rnnt_loss_autodiff` has the
same values and supports every transformation (JAX differentiates the same recursion; its reverse
mode keeps the log-softmax's and the gather's ``[batch, T, U+1, vocab]`` intermediates, so for
plain gradients :func:`rnnt_loss` is the faster and leaner choice).
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxloss.ops._common import exp2_neg, logsumexp, private_copy, scan_unroll, use_polynomials
from jaxloss.ops._sharding import vary_like
from jaxloss.ops.ctc import (
    _LOG2E,
    _NEG,
    _check_blank,
    _check_int_array,
    _compute_dtype,
    _lae,
    _lae_fast,
    _lengths,
)

__all__ = ["rnnt_loss", "rnnt_loss_autodiff"]


# --------------------------------------------------------------------------------------------
# Argument checks (trace time)
# --------------------------------------------------------------------------------------------


def _check_inputs(fn, logits, labels, logit_lengths, label_lengths, blank_id, clamp):
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{fn}: `logits` must be a float array; got dtype {logits.dtype}.")
    if logits.ndim != 4 or logits.shape[2] < 1 or logits.shape[3] < 1:
        raise ValueError(
            f"{fn}: `logits` must have shape [batch, T, U+1, vocab] with U+1 >= 1 and vocab >= 1;"
            f" got shape {logits.shape}."
        )
    batch, time, u1, vocab = logits.shape
    labels = _check_int_array(fn, "labels", labels, 2, batch)
    if labels.shape[1] != u1 - 1:
        raise ValueError(
            f"{fn}: `labels` must have shape [batch, U] = [{batch}, {u1 - 1}] (U+1 from the "
            f"logits); got shape {labels.shape}."
        )
    blank = _check_blank(fn, blank_id, vocab)
    logit_lengths = _lengths(fn, "logit_lengths", logit_lengths, batch, time)
    label_lengths = _lengths(fn, "label_lengths", label_lengths, batch, u1 - 1)
    if clamp is not None:
        if (
            isinstance(clamp, (bool, np.bool_))
            or not isinstance(clamp, numbers.Real)
            or not clamp > 0
            or not math.isfinite(clamp)
        ):
            raise ValueError(f"{fn}: `clamp` must be None or a float > 0; got {clamp!r}.")
        clamp = float(clamp)
    return logits, labels, logit_lengths, label_lengths, blank, clamp


# --------------------------------------------------------------------------------------------
# Lattice pieces
# --------------------------------------------------------------------------------------------


def _two_pass_lse(x, cdt):
    """logsumexp over the vocabulary: a max pass, then an exp-sum pass."""
    if x.dtype == cdt:
        return jax.nn.logsumexp(x, axis=3)
    # the flat view is what lets XLA:CPU keep the upcast inside the reduction's loop
    return logsumexp(x.reshape(-1, x.shape[3]), axis=1, dtype=cdt).reshape(x.shape[:3])


def _one_read_lse(x, shift, cdt):
    """logsumexp over the vocabulary in one read of the logits, shifted by ``shift`` [B, T, U+1].

    ``shift`` is one of each node's own logits (the larger of the blank's and the label's), so
    the shifted sum is at least 1 and cannot underflow; it overflows only when some class beats
    both by more than ~88 nats (or a logit is not finite), and then the usual two passes run
    instead (a ``lax.cond``: exact in every case, one pass over the logits saved in the common
    one). Each term ``exp(x - shift)`` carries float32's relative rounding, as in the two-pass
    form.
    """
    shift = lax.stop_gradient(shift)
    total = jnp.sum(jnp.exp(x.astype(cdt) - shift[..., None]), axis=3)
    # The log stays inside the branch: fused into the reduction's loop as an epilogue, XLA:CPU
    # ran the whole reduction about 3x slower (measured at B=4, T=500, U=100, V=1024).
    return lax.cond(
        jnp.all(jnp.isfinite(total)),
        lambda: shift + jnp.log(total),
        lambda: _two_pass_lse(x, cdt).astype(total.dtype),
    )


def _emissions(x, lab, blank: int, one_read: bool = False):
    """log-normaliser [B, T, U+1] and the blank and label log-probabilities [B, T, U+1] (the
    label one is the sentinel on the last row, u = U, which has no label to emit), all in the
    compute dtype; low-precision logits are upcast inside the reduction's loop only.

    ``one_read=True`` (the custom-VJP kernel, float32 and float64 logits) computes the normaliser
    in one pass over the logits, shifted by the blank's or the label's logit
    (:func:`_one_read_lse`); the autodiff twin keeps the plain two-pass form."""
    cdt = _compute_dtype(x.dtype)
    blank_x = private_copy(x, cdt, site=303)[..., blank].astype(cdt)
    label = private_copy(x, cdt, site=304)[:, :, :-1, :]
    label_x = jnp.take_along_axis(label, lab[:, None, :, None], axis=3, mode="clip")[..., 0]
    label_x = label_x.astype(cdt)
    if one_read and x.dtype == cdt:
        # (Low-precision logits keep the two passes: XLA would hoist the upcast out of the
        # lax.cond's branches and materialise a float32 copy of the logits.)
        shift = jnp.maximum(blank_x, jnp.concatenate([label_x, blank_x[:, :, -1:]], axis=2))
        lse = _one_read_lse(x, shift, cdt)
    else:
        lse = _two_pass_lse(x, cdt)
    blank_lp = jnp.maximum(blank_x - lse, _NEG)
    label_lp = jnp.maximum(label_x - lse[:, :, :-1], _NEG)
    pad = jnp.full((*label_lp.shape[:2], 1), _NEG, label_lp.dtype)
    return lse, blank_lp, jnp.concatenate([label_lp, pad], axis=2)


def _skew_index(time: int, u1: int):
    """For diagonal d and row u: the frame t = d - u (clipped) and whether it exists."""
    d = np.arange(time + u1 - 1)[:, None]
    u = np.arange(u1)[None, :]
    t = d - u
    return np.clip(t, 0, time - 1), (t >= 0) & (t < time), np.broadcast_to(u, t.shape)


def _skew(a):
    """[B, T, U+1] -> [T+U, B, U+1] with ``out[d, b, u] = a[b, d - u, u]`` (sentinel off-grid)."""
    _, time, u1 = a.shape
    t, ok, u = _skew_index(time, u1)
    return jnp.transpose(jnp.where(ok[None], a[:, t, u], _NEG), (1, 0, 2))


def _unskew(s, time: int):
    """Inverse of :func:`_skew`: [T+U, B, U+1] -> [B, T, U+1]."""
    u1 = s.shape[2]
    t = np.arange(time)[:, None]
    u = np.arange(u1)[None, :]
    return jnp.transpose(s, (1, 0, 2))[:, t + u, u]


def _shift_down(x):
    """Row u takes row u-1's value (the sentinel at u = 0)."""
    return jnp.concatenate([jnp.full((*x.shape[:-1], 1), _NEG, x.dtype), x[..., :-1]], axis=-1)


def _shift_up(x):
    """Row u takes row u+1's value (the sentinel at u = U)."""
    return jnp.concatenate([x[..., 1:], jnp.full((*x.shape[:-1], 1), _NEG, x.dtype)], axis=-1)


def _alpha(blank_s, label_s, *, store: bool, fast: bool):
    """Alpha over the diagonals: [T+U, B, U+1] if ``store`` else the last diagonal only.

    ``alpha[d, b, u]`` is the log-probability of reaching node (d - u, u), including every
    emission before it. Nodes past a row's lengths get values no valid node depends on."""
    lae = _lae_fast if fast else _lae
    init = jnp.full(blank_s.shape[1:], _NEG, blank_s.dtype).at[:, 0].set(0.0)
    init = vary_like(init, blank_s, label_s)

    def body(prev, xs):
        blank_d, label_d = xs
        new = lae(prev + blank_d, _shift_down(prev + label_d))
        return new, (new if store else None)

    last, table = lax.scan(body, init, (blank_s[:-1], label_s[:-1]), unroll=scan_unroll())
    if store:
        return jnp.concatenate([init[None], table], axis=0)
    return last


def _final(alpha_s, blank, logit_lengths, label_lengths):
    """log-likelihood: alpha at (T_b - 1, U_b) plus its final blank."""
    batch = blank.shape[0]
    rows = jnp.arange(batch)
    t_last = jnp.maximum(logit_lengths - 1, 0)
    ll = alpha_s[t_last + label_lengths, rows, label_lengths] + blank[rows, t_last, label_lengths]
    return jnp.where(logit_lengths > 0, ll, 2 * _NEG)


def _loss_from_ll(ll):
    return jnp.where(ll < _NEG / 2, jnp.inf, jnp.maximum(-ll, 0.0))


def _masks(time: int, u1: int, logit_lengths, label_lengths):
    """Skewed [T+U, B, U+1] masks: nodes on a row's lattice, and its terminal node."""
    t, ok, u = _skew_index(time, u1)
    t, u, ok = t[:, None, :], u[:, None, :], ok[:, None, :]
    t_len, u_len = logit_lengths[None, :, None], label_lengths[None, :, None]
    valid = ok & (t < t_len) & (u <= u_len)
    terminal = ok & (t == t_len - 1) & (u == u_len)
    return valid, terminal


# --------------------------------------------------------------------------------------------
# The custom-VJP core
# --------------------------------------------------------------------------------------------


def _forward(x, lab, logit_lengths, label_lengths, blank, fast):
    _, blank_lp, label_lp = _emissions(x, lab, blank, one_read=fast)
    alpha_s = _alpha(_skew(blank_lp), _skew(label_lp), store=True, fast=fast)
    return _loss_from_ll(_final(alpha_s, blank_lp, logit_lengths, label_lengths))


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _rnnt_core(x, lab, logit_lengths, label_lengths, blank, clamp):
    return _forward(x, lab, logit_lengths, label_lengths, blank, fast=True)


def _rnnt_core_fwd(x, lab, logit_lengths, label_lengths, blank, clamp):
    lse, blank_lp, label_lp = _emissions(x, lab, blank, one_read=True)
    blank_s, label_s = _skew(blank_lp), _skew(label_lp)
    alpha_s = _alpha(blank_s, label_s, store=True, fast=True)
    ll = _final(alpha_s, blank_lp, logit_lengths, label_lengths)
    res = (x, lab, logit_lengths, label_lengths, lse, blank_s, label_s, alpha_s, ll)
    return _loss_from_ll(ll), res


def _rnnt_core_bwd(blank, clamp, res, g):
    x, lab, logit_lengths, label_lengths, lse, blank_s, label_s, alpha_s, ll = res
    _, time, u1, vocab = x.shape
    dtype = lse.dtype
    infeasible = ll < _NEG / 2
    g = jnp.where(infeasible, 0.0, g).astype(dtype)
    # An infeasible row has alpha or beta at the sentinel on every node, so with ll := 0 its
    # transition probabilities underflow to 0 rather than overflow.
    ll = jnp.where(infeasible, 0.0, ll)[:, None]
    valid, terminal = _masks(time, u1, logit_lengths, label_lengths)

    def body(beta_next, xs):
        alpha_d, blank_d, label_d, valid_d, terminal_d = xs
        # The terminal node's blank ends the path: nothing left to emit after it.
        after_blank = jnp.where(terminal_d, 0.0, beta_next)
        after_label = _shift_up(beta_next)
        beta = jnp.where(valid_d, _lae_fast(blank_d + after_blank, label_d + after_label), _NEG)
        p_blank = jnp.where(valid_d, jnp.exp(alpha_d + blank_d + after_blank - ll), 0.0)
        p_label = jnp.where(valid_d, jnp.exp(alpha_d + label_d + after_label - ll), 0.0)
        # Every path crosses this diagonal once: the occupancies sum to 1 up to rounding (0 on
        # diagonals past the row's lattice, and in an infeasible row).
        total = jnp.sum(p_blank + p_label, axis=1, keepdims=True)
        norm = jnp.where(total > 0, 1.0 / jnp.maximum(total, 1e-30), 0.0)
        return beta, (p_blank * norm, p_label * norm)

    init = vary_like(jnp.full(blank_s.shape[1:], _NEG, dtype), blank_s, alpha_s, ll)
    xs = (alpha_s, blank_s, label_s, valid, terminal)
    _, (p_blank, p_label) = lax.scan(body, init, xs, reverse=True, unroll=scan_unroll())
    p_blank, p_label = _unskew(p_blank, time), _unskew(p_label, time)
    occupancy = (p_blank + p_label)[..., None]
    label_next = jnp.concatenate([lab, jnp.full((lab.shape[0], 1), -1, lab.dtype)], axis=1)
    classes = lax.broadcasted_iota(jnp.int32, (1, 1, 1, vocab), 3)
    log_softmax = private_copy(x, dtype, site=302).astype(dtype) - lse[..., None]
    # XLA:CPU's exp is most of this pass's arithmetic; the polynomial costs about half as much
    poly = use_polynomials(dtype)
    softmax = exp2_neg(log_softmax * _LOG2E) if poly else jnp.exp(log_softmax)
    grad = softmax * occupancy
    grad = grad - jnp.where(classes == blank, p_blank[..., None], 0.0)
    grad = grad - jnp.where(classes == label_next[:, None, :, None], p_label[..., None], 0.0)
    if clamp is not None:
        grad = jnp.clip(grad, -clamp, clamp)
    grad = (grad * g[:, None, None, None]).astype(x.dtype)
    return grad, None, None, None


_rnnt_core.defvjp(_rnnt_core_fwd, _rnnt_core_bwd)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def rnnt_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    logit_lengths: ArrayLike | None = None,
    label_lengths: ArrayLike | None = None,
    blank_id: int = 0,
    clamp: float | None = None,
) -> jax.Array:
    """Per-sequence RNN-T (transducer) negative log-likelihood.

    .. math::

        \\alpha(t, u) = \\operatorname{logaddexp}\\big(\\alpha(t-1, u) + \\varnothing(t-1, u),\\
        \\alpha(t, u-1) + y(t, u-1)\\big), \\qquad
        \\text{loss} = -\\big(\\alpha(T-1, U) + \\varnothing(T-1, U)\\big),

    with ``alpha(0, 0) = 0``, ``\\varnothing(t, u)`` the blank's and ``y(t, u)`` label ``u``'s
    log-softmax probability at node ``(t, u)``.

    Args:
      logits: ``[batch, T, U+1, vocab]`` joiner outputs, unnormalised (log-softmax is applied
        here over ``vocab``). Any float dtype; the math runs in float32 and the gradient comes back
        in this dtype.
      labels: ``[batch, U]`` integer targets, padded past each row's length with any value.
      logit_lengths: ``[batch]`` valid frames per row (default: all ``T``).
      label_lengths: ``[batch]`` valid labels per row (default: all ``U``); ``0`` is the empty
        target.
      blank_id: class index of the blank, a Python int in ``[-vocab, vocab)``.
      clamp: ``None`` or a float ``> 0``: clip each element of the per-sequence gradient with
        respect to the logits to ``[-clamp, clamp]`` before it is scaled by the incoming
        cotangent (torchaudio's ``clamp``; its ``-1``, "off", is ``None`` here).

    Returns:
      ``[batch]`` losses in the compute dtype (float32 unless the logits are float64), each
      ``>= 0`` or ``+inf``.

    Raises:
      TypeError: ``logits`` not floating; ``labels`` or a length not integer; ``blank_id`` not an
        int.
      ValueError: a wrong rank or a ``labels`` width other than ``U``; a batch size that differs
        from the logits'; ``blank_id`` out of range; ``clamp`` not ``None`` or a float ``> 0``.

    Notes:
      ``logit_length == 0`` (or every path crossing a logit of ``-inf``) gives ``+inf`` with a
      zero gradient. Nodes past a row's lengths get a zero gradient. A label outside
      ``[0, vocab)`` within its row's length gives that row a NaN loss and a zero gradient,
      leaving the other rows untouched. Differentiated by a hand-written beta recursion
      (``jax.custom_vjp``): ``jax.grad`` works, forward mode does not; use
      :func:`rnnt_loss_autodiff` for ``jax.jvp`` / ``jax.hessian``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops import rnnt_loss
      >>> logits = jnp.zeros((2, 2, 2, 3))  # uniform over 3 classes; T=2, U=1
      >>> labels = jnp.array([[1], [2]])
      >>> # 2 paths (emit the label at t=0 or t=1), each 3 symbols of probability 1/3
      >>> print(rnnt_loss(logits, labels))  # -log(2 / 27)
      [2.603 2.603]
      >>> print(rnnt_loss(logits, labels, label_lengths=jnp.array([1, 0])))  # 2 blanks: -log(1/9)
      [2.603 2.197]
    """
    return _rnnt_entry("rnnt_loss", logits, labels, logit_lengths, label_lengths, blank_id, clamp)


def _rnnt_entry(fn, logits, labels, logit_lengths, label_lengths, blank_id, clamp):
    """:func:`rnnt_loss` with the caller's name in its errors (the loss handles pass theirs)."""
    logits, labels, logit_lengths, label_lengths, blank, clamp = _check_inputs(
        fn, logits, labels, logit_lengths, label_lengths, blank_id, clamp
    )
    return _rnnt(logits, labels, logit_lengths, label_lengths, blank, clamp, True)


def rnnt_loss_autodiff(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    logit_lengths: ArrayLike | None = None,
    label_lengths: ArrayLike | None = None,
    blank_id: int = 0,
    clamp: float | None = None,
) -> jax.Array:
    """:func:`rnnt_loss` with JAX's own autodiff: same values, every transformation.

    No custom rule: ``jax.jvp``, ``jax.jacfwd``, ``jax.hessian`` and Hessian-vector products
    work. Its reverse mode keeps the log-softmax's and the label gather's ``[batch, T, U+1,
    vocab]`` intermediates; for plain gradients use :func:`rnnt_loss`.

    Args:
      logits, labels, logit_lengths, label_lengths, blank_id: as for :func:`rnnt_loss`.
      clamp: must be ``None``: clipping the gradient needs :func:`rnnt_loss`'s custom backward.

    Returns:
      ``[batch]`` losses, as :func:`rnnt_loss`.

    Raises:
      TypeError, ValueError: as :func:`rnnt_loss`, and ``ValueError`` for a ``clamp``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss.ops import rnnt_loss_autodiff
      >>> logits, labels = jnp.zeros((1, 2, 2, 3)), jnp.array([[1]])
      >>> f = lambda z: rnnt_loss_autodiff(z, labels)
      >>> value, tangent = jax.jvp(f, (logits,), (jnp.ones_like(logits),))
      >>> tangent  # shifting every logit by the same amount changes nothing
      Array([0.], dtype=float32)
    """
    fn = "rnnt_loss_autodiff"
    if clamp is not None:
        raise ValueError(
            f"{fn}: `clamp` must be None (clipping the gradient needs rnnt_loss's custom "
            f"backward); got {clamp!r}."
        )
    logits, labels, logit_lengths, label_lengths, blank, _ = _check_inputs(
        fn, logits, labels, logit_lengths, label_lengths, blank_id, None
    )
    return _rnnt(logits, labels, logit_lengths, label_lengths, blank, None, False)


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _rnnt(logits, labels, logit_lengths, label_lengths, blank, clamp, custom_vjp):
    u = jnp.arange(labels.shape[1])[None, :]
    in_target = u < label_lengths[:, None]
    vocab = logits.shape[3]
    out_of_range = jnp.any(in_target & ((labels < 0) | (labels >= vocab)), axis=1)
    lab = jnp.where(in_target, labels, 0).astype(jnp.int32)
    if custom_vjp:
        # the logits enter in their own dtype: a float32 copy of bfloat16 logits is never built
        loss = _rnnt_core(logits, lab, logit_lengths, label_lengths, blank, clamp)
    else:
        x = logits.astype(_compute_dtype(logits.dtype))
        loss = _forward(x, lab, logit_lengths, label_lengths, blank, fast=False)
    return jnp.where(out_of_range, jnp.nan, loss)
