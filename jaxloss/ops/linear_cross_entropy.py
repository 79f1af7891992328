"""Fused linear projection + sparse softmax cross-entropy for large vocabularies.

A language-model head computes ``logits = hidden @ weight (+ bias)``, ``[tokens, vocab]``, and takes
the cross-entropy against integer labels. For a large vocabulary those logits (and the softmax that
autodiff keeps for the backward) dominate training memory: 2048 tokens x 65536 classes in float32
is 512 MiB per copy. :func:`linear_cross_entropy` never builds them.

How it works
------------
* The **forward** streams the vocabulary in blocks of ``block_size`` columns of ``weight``. Each
  block's logits ``[tokens, block]`` are folded into a running (max, sum of exp) pair -- the online
  logsumexp -- together with the label's logit (an ``iota == label`` comparison, no gather) and,
  for label smoothing, the running sum of the logits. The residuals are ``hidden``, ``weight``,
  ``bias``, ``labels`` (all alive anyway) and the per-token logsumexp ``[tokens]``.
* The **backward** (``jax.custom_vjp``) recomputes each block's logits, forms the block of
  ``g * dloss/dlogits`` in one fused elementwise pass, accumulates
  ``d_hidden += dz_block @ W_block^T`` in float32 and writes ``d_weight[:, block] =
  hidden^T @ dz_block`` (and ``d_bias[block]``) in place into the gradient buffer.
* A vocabulary that is not a multiple of the block is handled by a final, smaller block (no
  padding of ``weight``, so no copy of it).

Peak temporary memory is a few ``[tokens, block_size]`` float32 buffers instead of several
``[tokens, vocab]`` ones; the price is one extra ``tokens x D x vocab`` matmul (the recomputation).

Precision: operands may be bfloat16 or float16; every matmul accumulates in float32, the
logsumexp and the loss are float32, and each gradient comes back in its operand's dtype. float64
operands compute in float64.

Semantics are those of :func:`jaxloss.ops.sparse_softmax_cross_entropy` applied to the logits
``z = hidden @ weight + bias``::

    lse  = logsumexp(z)
    loss = (1 - ls) * (lse - z[label]) + ls * (lse - mean(z)) + z_loss * lse**2

exactly 0 (with a zero gradient) for a token whose label is ``ignore_index``, and ``NaN`` for a
label outside ``[0, V)``. :func:`linear_cross_entropy_jvp` is the same function with forward-mode
autodiff.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxloss.ops.cross_entropy import compute_dtype

__all__ = ["default_block_size", "linear_cross_entropy", "linear_cross_entropy_jvp"]

_NAME = "linear_cross_entropy"

# Default vocabulary block, measured on a 2-core AVX2 CPU at N=2048, D=1024, V=65536
# (`python -m benchmarks.bench_linear_cross_entropy --sweep`, results in
# benchmarks/results/linear_cross_entropy_block_sweep.md): blocks of 1024..16384 columns are within
# ~5% of each other in time (0.81-0.86x the unfused optax baseline), while temp memory grows
# linearly with the block (28 MiB at 1024, 40 MiB at 2048, 264 MiB at 16384). 2048 keeps the
# per-block matmuls wide enough for smaller token counts at a small memory cost.
_DEFAULT_BLOCK = 2048


def default_block_size(vocab_size: int) -> int:
    """The vocabulary block :func:`linear_cross_entropy` uses when ``block_size=None``.

    ``min(vocab_size, 2048)``: a block of a couple of thousand columns keeps each matmul large
    enough to run at full speed while its ``[tokens, block]`` float32 temporaries stay small.
    """
    return max(1, min(int(vocab_size), _DEFAULT_BLOCK))


# ----------------------------------------------------------------------------------------------
# validation


def _check_inputs(name, hidden, weight, labels, bias, ignore_index, ls, z_loss, block_size):
    """Trace-time checks; every message names the function, the argument, expected and got."""
    for arg, x in (("hidden", hidden), ("weight", weight), ("bias", bias)):
        if x is not None and not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name}: `{arg}` must be a floating array; got dtype {x.dtype}.")
    if hidden.ndim < 1:
        raise ValueError(f"{name}: `hidden` must have shape [..., D]; got a scalar.")
    if weight.ndim != 2:
        raise ValueError(
            f"{name}: `weight` must have shape [D, V]; got shape {tuple(weight.shape)}."
        )
    if hidden.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"{name}: the last axis of `hidden` must equal the first axis of `weight` (D); got "
            f"hidden {tuple(hidden.shape)} and weight {tuple(weight.shape)}."
        )
    if weight.shape[1] < 1:
        raise ValueError(f"{name}: `weight` must have at least one vocabulary column; got 0.")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{name}: `labels` must hold integer class indices; got dtype {labels.dtype}. "
            "Cast with `.astype(jnp.int32)` if the floats are whole numbers."
        )
    if tuple(labels.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"{name}: `labels` must have the shape of `hidden` without its last axis, "
            f"{tuple(hidden.shape[:-1])}; got {tuple(labels.shape)}."
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(
            f"{name}: `bias` must have shape [V] = ({weight.shape[1]},); got {tuple(bias.shape)}."
        )
    if ignore_index is not None and (
        isinstance(ignore_index, (bool, jax.core.Tracer))
        or not isinstance(ignore_index, (int, np.integer))
    ):
        raise TypeError(
            f"{name}: `ignore_index` must be None or a Python int; got {ignore_index!r}."
        )
    for arg, value, hi in (("label_smoothing", ls, 1.0), ("z_loss", z_loss, None)):
        if isinstance(value, (bool, jax.core.Tracer)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"{name}: `{arg}` must be a Python float (it is a static option); got {value!r}."
            )
        if not (value >= 0.0 and (hi is None or value <= hi)) or math.isnan(value):
            rng = "in [0.0, 1.0]" if hi is not None else "a float >= 0.0"
            raise ValueError(f"{name}: `{arg}` must be {rng}; got {value!r}.")
    if block_size is not None and (
        isinstance(block_size, bool)
        or not isinstance(block_size, (int, np.integer))
        or block_size < 1
    ):
        raise ValueError(f"{name}: `block_size` must be None or an int >= 1; got {block_size!r}.")


# ----------------------------------------------------------------------------------------------
# the kernel


def _mm(a: jax.Array, b: jax.Array, contract: tuple[int, int], acc: jnp.dtype) -> jax.Array:
    """``a`` and ``b`` contracted on one axis each (no transpose is materialised), in ``acc``."""
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=acc)


def _block_logits(hidden, weight, bias, start, size, acc):
    """Logits ``[tokens, size]`` of the columns ``start:start+size``, and that block of weight.

    ``hidden`` must already be in the operand dtype (the common dtype of hidden and weight).
    """
    w_blk = lax.dynamic_slice_in_dim(weight, start, size, axis=1).astype(hidden.dtype)
    z = _mm(hidden, w_blk, (1, 0), acc)
    if bias is not None:
        z = z + lax.dynamic_slice_in_dim(bias, start, size).astype(acc)[None, :]
    return z, w_blk


def _scan_blocks(body, carry, vocab: int, block: int):
    """Run ``body(carry, start, size)`` over the vocabulary: a scan of full blocks, then the rest.

    The last block may be smaller; it is a separate (static-shape) call, so nothing is padded.
    """
    n_full, rem = divmod(vocab, block)
    if n_full:
        carry, _ = lax.scan(
            lambda c, j: (body(c, j * block, block), None),
            carry,
            jnp.arange(n_full, dtype=jnp.int32),
        )
    if rem:
        carry = body(carry, n_full * block, rem)
    return carry


def _varying_axes(x: jax.Array) -> set[Any]:
    """The ``shard_map`` axes ``x`` varies over (empty outside ``shard_map``)."""
    aval = jax.typeof(x) if hasattr(jax, "typeof") else getattr(x, "aval", None)
    manual = getattr(aval, "manual_axis_type", None)
    if manual is not None:
        return set(manual.varying)
    return set(getattr(aval, "vma", ()) or ())


def _vary_like(x: jax.Array, *refs: jax.Array | None) -> jax.Array:
    """``x`` marked as varying over every ``shard_map`` axis that one of ``refs`` varies over.

    A scan carry that starts as a constant must already have the manual-axis type the loop body
    gives it (inside ``shard_map``); a no-op elsewhere.
    """
    want: set[Any] = set()
    for ref in refs:
        if ref is not None:
            want |= _varying_axes(ref)
    missing = tuple(sorted(want - _varying_axes(x)))
    return lax.pcast(x, missing, to="varying") if missing else x


def _sum_like(ct: jax.Array | None, primal: jax.Array | None) -> jax.Array | None:
    """A cotangent with the manual-axis type of its primal: ``psum`` over the extra axes.

    Inside ``shard_map`` a replicated ``weight`` meeting sharded ``hidden`` gets one gradient
    contribution per device; their sum is its gradient (what autodiff's transpose of the implicit
    ``pvary`` does). A no-op elsewhere.
    """
    if ct is None:
        return None
    extra = tuple(sorted(_varying_axes(ct) - _varying_axes(primal)))
    return lax.psum(ct, extra) if extra else ct


def _shift(m: jax.Array) -> jax.Array:
    """The logsumexp shift for running max ``m``: ``m`` itself where finite, else 0."""
    return jnp.where(jnp.isfinite(m), m, jnp.zeros((), m.dtype))


def _label_masks(labels: jax.Array, vocab: int, ignore_index: int | None):
    """Boolean ``(in_range, ignored)`` per token; ``ignored`` is None without ``ignore_index``."""
    in_range = (labels >= 0) & (labels < vocab)
    ignored = None if ignore_index is None else labels == ignore_index
    return in_range, ignored


def _forward(hidden, weight, bias, labels, ignore_index, ls, z_loss, block, remat=False):
    """Per-token ``(loss, lse)`` in the compute dtype, streaming the vocabulary in blocks.

    ``remat=True`` wraps each block in ``jax.checkpoint``: that is the plain-autodiff twin, whose
    reverse mode then keeps only the per-block running statistics instead of every block's logits.
    """
    n, vocab = hidden.shape[0], weight.shape[1]
    op = jnp.result_type(hidden.dtype, weight.dtype)
    acc = compute_dtype(op)
    h_op = hidden.astype(op)

    def fold(carry, start, size):
        # m: running max (-inf until a finite logit is seen); s: sum of exp(z - shift(m)).
        m, s, tgt, tot = carry
        z, _ = _block_logits(h_op, weight, bias, start, size, acc)
        # The running max is a shift, not part of the function: keep autodiff (of the twin) off it.
        m_new = lax.stop_gradient(jnp.maximum(m, jnp.max(z, axis=1)))
        shift = _shift(m_new)
        # A token whose logits so far were all -inf (a masked vocabulary slice) has s = 0: never
        # rescale it by exp(-inf - ...) or exp(+big), which would give NaN.
        decay = jnp.where(jnp.isneginf(m), jnp.zeros((), acc), jnp.exp(m - shift))
        s = s * decay + jnp.sum(jnp.exp(z - shift[:, None]), axis=1)
        cols = start + lax.broadcasted_iota(labels.dtype, (1, size), 1)
        tgt = tgt + jnp.sum(jnp.where(cols == labels[:, None], z, jnp.zeros((), acc)), axis=1)
        if ls:
            tot = tot + jnp.sum(z, axis=1)
        return m_new, s, tgt, tot

    if remat:
        fold = jax.checkpoint(fold, static_argnums=(2,))
    zeros = jnp.zeros((n,), acc)
    init = (jnp.full((n,), -jnp.inf, acc), zeros, zeros, zeros)
    init = tuple(_vary_like(x, hidden, weight, bias, labels) for x in init)
    m, s, tgt, tot = _scan_blocks(fold, init, vocab, block)
    lse = _shift(m) + jnp.log(s)  # -inf for a token whose logits are all -inf
    loss = lse - (1.0 - ls) * tgt if ls else lse - tgt
    if ls:
        loss = loss - (ls / vocab) * tot
    if z_loss:
        loss = loss + z_loss * jnp.square(lse)
    in_range, ignored = _label_masks(labels, vocab, ignore_index)
    loss = jnp.where(in_range, loss, jnp.asarray(jnp.nan, acc))
    if ignored is not None:
        loss = jnp.where(ignored, jnp.zeros((), acc), loss)
    return loss, lse


def _backward(hidden, weight, bias, labels, lse, g, ignore_index, ls, z_loss, block):
    """``(d_hidden, d_weight, d_bias)`` for the cotangent ``g`` of the per-token loss."""
    n, vocab = hidden.shape[0], weight.shape[1]
    acc = lse.dtype
    op = jnp.result_type(hidden.dtype, weight.dtype)
    in_range, ignored = _label_masks(labels, vocab, ignore_index)

    # dloss/dz_k = (1 + 2 z_loss lse) p_k - (1 - ls) [k == label] - ls / V, times g per token.
    coef = jnp.where(in_range, g.astype(acc), jnp.asarray(jnp.nan, acc))
    if ignored is not None:
        coef = jnp.where(ignored, jnp.zeros((), acc), coef)
    p_scale = (coef * (1.0 + 2.0 * z_loss * lse) if z_loss else coef)[:, None]
    hit = (coef * (1.0 - ls))[:, None]
    flat = (coef * (ls / vocab))[:, None]
    lse_col = lse[:, None]
    keep = None if ignored is None else ~ignored[:, None]
    h_op = hidden.astype(op)
    # hidden^T materialised once ([D, tokens], small): ``h_t @ dz`` is a plain matmul, markedly
    # faster on CPU than contracting both operands over their leading (token) axis.
    h_t = jnp.transpose(h_op)

    def grad_block(carry, start, size):
        d_hidden, d_weight, d_bias = carry
        z, w_blk = _block_logits(h_op, weight, bias, start, size, acc)
        cols = start + lax.broadcasted_iota(labels.dtype, (1, size), 1)
        dz = p_scale * jnp.exp(z - lse_col) - jnp.where(cols == labels[:, None], hit, 0.0)
        if ls:
            dz = dz - flat
        if keep is not None:
            # Exactly zero for ignored tokens, even where their logits are not finite.
            dz = jnp.where(keep, dz, jnp.zeros((), acc))
        dz_op = dz.astype(op)
        d_hidden = d_hidden + _mm(dz_op, w_blk.astype(op), (1, 1), acc)
        dw_blk = _mm(h_t, dz_op, (1, 0), acc).astype(weight.dtype)
        d_weight = lax.dynamic_update_slice_in_dim(d_weight, dw_blk, start, axis=1)
        if d_bias is not None:
            db_blk = jnp.sum(dz, axis=0).astype(d_bias.dtype)
            d_bias = lax.dynamic_update_slice_in_dim(d_bias, db_blk, start, axis=0)
        return d_hidden, d_weight, d_bias

    init = (
        jnp.zeros((n, hidden.shape[1]), acc),
        jnp.zeros(weight.shape, weight.dtype),
        None if bias is None else jnp.zeros(bias.shape, bias.dtype),
    )
    refs = (hidden, weight, bias, labels, lse, g)
    init = tuple(None if x is None else _vary_like(x, *refs) for x in init)
    d_hidden, d_weight, d_bias = _scan_blocks(grad_block, init, vocab, block)
    return d_hidden.astype(hidden.dtype), d_weight, d_bias


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def _fused(hidden, weight, bias, labels, ignore_index, ls, z_loss, block):
    return _forward(hidden, weight, bias, labels, ignore_index, ls, z_loss, block)[0]


def _fused_fwd(hidden, weight, bias, labels, ignore_index, ls, z_loss, block):
    loss, lse = _forward(hidden, weight, bias, labels, ignore_index, ls, z_loss, block)
    return loss, (hidden, weight, bias, labels, lse)


def _fused_bwd(ignore_index, ls, z_loss, block, residuals, g):
    hidden, weight, bias, labels, lse = residuals
    grads = _backward(hidden, weight, bias, labels, lse, g, ignore_index, ls, z_loss, block)
    grads = tuple(_sum_like(ct, x) for ct, x in zip(grads, (hidden, weight, bias), strict=True))
    return (*grads, None)


_fused.defvjp(_fused_fwd, _fused_bwd)


# ----------------------------------------------------------------------------------------------
# public API


def _prepare(name, hidden, weight, labels, bias, ignore_index, ls, z_loss, block_size):
    hidden = jnp.asarray(hidden)
    weight = jnp.asarray(weight)
    labels = jnp.asarray(labels)
    bias = None if bias is None else jnp.asarray(bias)
    _check_inputs(name, hidden, weight, labels, bias, ignore_index, ls, z_loss, block_size)
    # One index dtype for the iota comparison (int8 could not count to V), as in cross_entropy.
    labels = labels.astype(jnp.int64 if labels.dtype.itemsize == 8 else jnp.int32)
    vocab = weight.shape[1]
    block = default_block_size(vocab) if block_size is None else min(int(block_size), vocab)
    ignore = None if ignore_index is None else int(ignore_index)
    return hidden, weight, labels, bias, ignore, float(ls), float(z_loss), block


def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    block_size: int | None = None,
) -> jax.Array:
    """Per-token cross-entropy of ``hidden @ weight + bias`` without materialising the logits.

    Equal (to float32 rounding) to ``sparse_softmax_cross_entropy(hidden @ weight + bias, labels,
    ignore_index=..., label_smoothing=..., z_loss=...)`` in value and in every gradient, with a
    peak temporary memory of a few ``[tokens, block_size]`` buffers instead of several
    ``[tokens, vocab]`` ones. See the module docstring for the algorithm.

    Args:
      hidden: ``[..., D]`` float activations (any leading token axes; bfloat16 is fine).
      weight: ``[D, V]`` float projection (the transpose of a ``torch.nn.Linear`` weight).
      labels: integer class indices of shape ``hidden.shape[:-1]``.
      bias: optional ``[V]`` bias.
      ignore_index: tokens whose label equals it get a loss of exactly 0 and a zero gradient.
      label_smoothing: ``ls`` in ``[0, 1]``; the target is ``(1 - ls) * onehot + ls / V``.
      z_loss: ``>= 0``; adds ``z_loss * logsumexp(z)**2`` (the PaLM auxiliary loss).
      block_size: vocabulary columns per block; ``None`` picks :func:`default_block_size`. The
        vocabulary need not be a multiple of it (the last block is a smaller one).

    Returns:
      The per-token loss, shape ``hidden.shape[:-1]``; float32 (float64 for float64 operands).

    Raises:
      TypeError: non-float ``hidden``/``weight``/``bias``, non-integer ``labels``, a traced option.
      ValueError: shapes that do not line up, an option out of range.

    Notes:
      * Precision: the matmuls run on the operands' dtype with ``preferred_element_type=float32``;
        the logsumexp and the loss are float32; ``d_hidden`` and ``d_bias`` are accumulated across
        blocks in float32. Each gradient comes back in its operand's dtype.
      * A label outside ``[0, V)`` that is not ``ignore_index`` cannot be caught under ``jit``: as
        in :func:`~jaxloss.ops.sparse_softmax_cross_entropy`, its loss is ``NaN`` and so is its
        gradient (which, through ``d_weight``, poisons the whole weight gradient, exactly as the
        unfused composition does): loud rather than silently wrong.
      * Reverse mode only (``jax.custom_vjp``). For forward-mode autodiff (``jax.jvp``,
        ``jax.jacfwd``, ``jax.hessian``) use :func:`linear_cross_entropy_jvp`, same signature.
      * ``ignore_index``, ``label_smoothing``, ``z_loss`` and ``block_size`` are static Python
        values (part of the compiled program).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops import linear_cross_entropy
      >>> hidden = jnp.ones((2, 3, 4))            # [batch, time, D]
      >>> weight = jnp.zeros((4, 10))             # [D, V]
      >>> labels = jnp.array([[1, 2, 3], [4, 5, -100]])
      >>> loss = linear_cross_entropy(hidden, weight, labels, ignore_index=-100)
      >>> loss.shape
      (2, 3)
      >>> print(f"{float(loss[0, 0]):.4f} {float(loss[1, 2]):.1f}")  # log(10), then ignored
      2.3026 0.0
    """
    args = _prepare(
        _NAME, hidden, weight, labels, bias, ignore_index, label_smoothing, z_loss, block_size
    )
    hidden, weight, labels, bias, ignore, ls, zl, block = args
    h2 = hidden.reshape(-1, hidden.shape[-1])
    loss = _fused(h2, weight, bias, labels.reshape(-1), ignore, ls, zl, block)
    return loss.reshape(hidden.shape[:-1])


def linear_cross_entropy_jvp(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    block_size: int | None = None,
) -> jax.Array:
    """:func:`linear_cross_entropy` with every autodiff mode (no ``custom_vjp``).

    The same blocked forward, written as plain differentiable JAX with each block under
    ``jax.checkpoint``: same signature and values, and it works under ``jax.jvp``, ``jax.jacfwd``,
    ``jax.hessian`` and forward-over-reverse Hessian-vector products. Forward mode streams the
    tangents block by block (no ``[tokens, vocab]`` array); reverse mode recomputes each block
    like the fused kernel but is slower (autodiff accumulates ``d_weight`` through a full-size
    buffer per block), so prefer :func:`linear_cross_entropy` for training.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss.ops import linear_cross_entropy_jvp
      >>> h, w, y = jnp.ones((3, 4)), jnp.zeros((4, 5)), jnp.array([0, 1, 2])
      >>> primal, tangent = jax.jvp(lambda h: linear_cross_entropy_jvp(h, w, y), (h,), (h,))
      >>> print(f"{float(primal[0]):.4f} {float(tangent[0]):.1f}")  # log(5); zero weights
      1.6094 0.0
    """
    args = _prepare(
        _NAME + "_jvp",
        hidden,
        weight,
        labels,
        bias,
        ignore_index,
        label_smoothing,
        z_loss,
        block_size,
    )
    hidden, weight, labels, bias, ignore, ls, zl, block = args
    h2 = hidden.reshape(-1, hidden.shape[-1])
    loss, _ = _forward(h2, weight, bias, labels.reshape(-1), ignore, ls, zl, block, remat=True)
    return loss.reshape(hidden.shape[:-1])
