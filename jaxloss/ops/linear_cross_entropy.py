"""Fused linear projection + sparse softmax cross-entropy for large vocabularies.

A language-model head computes ``logits = hidden @ weight (+ bias)``, ``[tokens, vocab]``, and takes
the cross-entropy against integer labels. For a large vocabulary those logits (and the softmax that
autodiff keeps for the backward) dominate training memory: 2048 tokens x 65536 classes in float32
is 512 MiB per copy. :func:`linear_cross_entropy` never builds them.

How it works
------------
* The **forward** streams the vocabulary in blocks of ``block_size`` columns of ``weight``. Each
  block's logits ``[tokens, block]`` are folded into a running (max, sum of exp) pair -- the online
  logsumexp -- together with the label's logit (an ``iota == label`` comparison, no gather), the
  running sum of the logits (label smoothing) and the running argmax (``return_aux``). The
  residuals are ``hidden``, ``weight``, ``bias``, ``labels`` (all alive anyway) and the per-token
  logsumexp ``[tokens]``.
* The **backward** (``jax.custom_vjp``, ``strategy="recompute"``) recomputes each block's logits,
  forms the block of ``dloss/dlogits`` in one fused elementwise pass (through the soft cap, with
  the auxiliary outputs' cotangents folded into the same per-token coefficients), accumulates
  ``d_hidden += dz_block @ W_block^T`` in float32 and writes ``d_weight[:, block] =
  hidden^T @ dz_block`` (and ``d_bias[block]``) in place into the gradient buffer. That is one
  matmul more than the unfused head (4 in all).
* ``strategy="in_forward"`` instead walks chunks of tokens against the whole vocabulary: each
  chunk's logits ``[chunk, V]`` come from one matmul into a buffer that the rest of the chunk
  rewrites in place. A loop over vocabulary blocks folds them into the statistics (so the
  chunk's logsumexp is known before its softmax is needed); a second forms each block of
  ``dloss/dlogits`` over its logits and adds ``hidden_chunk^T @ dz_block`` into
  ``d_weight[block]`` (in place: the temporary is a block, never the size of the weight); then
  ``d_hidden_chunk = dz @ W^T`` is one matmul over the whole vocabulary. 3 matmuls, like the
  unfused head, and one ``[chunk, V]`` buffer; the gradients for a unit cotangent are the
  residual, and XLA writes ``d_weight`` and ``d_hidden`` straight into their output buffers.
  The backward scales them when every contributing token has the same cotangent (a mean or sum
  of the loss); any other cotangent (weights applied outside the kernel, gradients through the
  auxiliary outputs) runs the ``"recompute"`` backward instead, as a while loop whose trip count
  is 0 on the fast path, so the result is exact in every case.
* A vocabulary that is not a multiple of the block is handled by a final, smaller block (no
  padding of ``weight``, so no copy of it). ``weight`` may be ``[D, V]`` or ``[V, D]`` (a tied
  embedding table); each block is sliced in place either way.
* **Vocab-parallel** (``vocab_axis_name``): inside ``jax.shard_map`` with the vocabulary axis of
  ``weight`` split over a mesh axis, each device streams only its slice, and the per-token
  statistics (max, exp-sum, label logit, logit sum, argmax) are combined with ``[tokens]``-sized
  collectives before the loss is formed.

Precision: operands may be bfloat16 or float16; every matmul accumulates in float32, the
logsumexp and the loss are float32, and each gradient comes back in its operand's dtype. float64
operands compute in float64.

Semantics are those of :func:`jaxloss.ops.sparse_softmax_cross_entropy` applied to the logits
``z = hidden @ weight + bias`` (soft-capped when asked): exactly 0 (with a zero gradient) for a
token whose label is ``ignore_index``, and ``NaN`` for a label outside ``[0, V)``.
:func:`linear_cross_entropy_jvp` is the same function with forward-mode autodiff, and
:func:`causal_lm_shift` turns ``[batch, seq]`` token ids into next-token labels.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxloss.ops._common import (
    SMOOTHING_STYLES,
    as_floating,
    compute_dtype,
    finite_or_zero,
    index_dtype,
    label_masks,
    online_lse_step,
    smoothing_terms,
    static_axis_name,
    static_choice,
    static_float,
    static_ignore_index,
)
from jaxloss.ops._sharding import (
    combine_argmax,
    combine_exp_sum,
    combine_max,
    combine_sum,
    global_class_count,
    sum_like,
    vary_like,
    vocab_slice,
)

__all__ = [
    "LinearCrossEntropyAux",
    "causal_lm_shift",
    "default_block_size",
    "default_token_block_size",
    "linear_cross_entropy",
    "linear_cross_entropy_jvp",
]

_NAME = "linear_cross_entropy"

# Default vocabulary block of "recompute", measured on a 2-core AVX2 CPU at N=2048, D=1024,
# V=65536 (`python -m benchmarks.bench_linear_cross_entropy --sweep`, results in
# benchmarks/results/linear_cross_entropy_block_sweep.md): blocks of 1024..16384 columns are within
# ~5% of each other in time, while temp memory grows linearly with the block (28 MiB at 1024, 40
# MiB at 2048, 264 MiB at 16384). 2048 keeps the per-block matmuls wide enough for smaller token
# counts at a small memory cost.
_DEFAULT_BLOCK = 2048
# On a GPU the blocks run one after another: on an H200 (jax 0.11.2, same shape, one interleaved
# sweep) 2048 / 4096 / 8192 / 16384 columns took 1.71 / 1.44 / 1.40 / 1.36x the unfused head's
# time with 80 / 88 / 168 / 328 MiB of temp memory. 4096 is the step that costs almost no memory.
_DEFAULT_BLOCK_GPU = 4096
# "in_forward"'s vocabulary block only feeds the weight-gradient matmul ``hidden_chunk^T @ dz``
# (the logits and d_hidden are one matmul per chunk). At a 128-token chunk 512 columns ran it
# fastest of 512..2048 (its temporary is 2 MiB at D=1024); at 512-token chunks 4096 columns took
# 7% and 15% less time for the whole head than 512 in two direct interleaved runs (2048: 2-5%,
# 8192: 6%; benchmarks/results/linear_cross_entropy_strategies.md), since the wider matmuls and
# fewer in-place updates of d_weight cost less per column.
_IN_FORWARD_BLOCK = 512
_IN_FORWARD_WIDE_BLOCK = 4096
_IN_FORWARD_WIDE_FROM = 256  # tokens per chunk
# "in_forward" keeps one chunk of logits, [tokens, V] float32, of at most this many elements
# (128 MiB): 512 tokens at V=65536. Measured at N=2048, D=1024, V=65536 float32 on a 2-core CPU
# (benchmarks/results/linear_cross_entropy_strategies.md), time over the unfused optax head's:
# 512-token chunks 0.71 (154 MiB with its 4096-column block), 128 tokens 0.84-0.92 (35 MiB),
# "recompute" about 0.9 (40 MiB). Within the 1/20-of-optax memory bound (51 MiB) "in_forward"'s
# edge is within the run-to-run spread, and "recompute" is exact for every cotangent without a
# second backward: "recompute" stays the default, and "in_forward" keeps the chunk that makes it
# fast.
_TOKEN_BLOCK_ELEMENTS = 1 << 25
STRATEGIES = ("recompute", "in_forward")
DEFAULT_STRATEGY = "recompute"


def default_block_size(
    vocab_size: int, strategy: str = "recompute", token_block_size: int | None = None
) -> int:
    """The vocabulary block :func:`linear_cross_entropy` uses when ``block_size=None``.

    ``min(vocab_size, 2048)`` for ``"recompute"``: a block of a couple of thousand columns keeps
    each matmul large enough to run at full speed while its ``[tokens, block]`` float32
    temporaries stay small (4096 when JAX's default backend is a GPU, where the blocks' loop is
    the cost: 16% less time than 2048 on an H200 for 10% more memory). For ``"in_forward"``,
    whose block only feeds the weight-gradient matmul: ``min(vocab_size, 4096)`` with chunks of
    256 tokens or more (``token_block_size``, default :func:`default_token_block_size`),
    ``min(vocab_size, 512)`` with smaller chunks, whose memory the wider block would nearly
    double.
    """
    block = _DEFAULT_BLOCK_GPU if jax.default_backend() == "gpu" else _DEFAULT_BLOCK
    if strategy == "in_forward":
        chunk = (
            default_token_block_size(vocab_size) if token_block_size is None else token_block_size
        )
        block = _IN_FORWARD_WIDE_BLOCK if chunk >= _IN_FORWARD_WIDE_FROM else _IN_FORWARD_BLOCK
    return max(1, min(int(vocab_size), block))


def default_token_block_size(vocab_size: int, tokens: int | None = None) -> int:
    """The token chunk of ``strategy="in_forward"`` when ``token_block_size=None``.

    At most ``2**25`` logits per chunk (128 MiB in float32), at least 16 tokens: 512 tokens for a
    vocabulary of 65536 (per device, when the vocabulary is sharded). With ``tokens`` the chunks
    are then evened out: the fewest chunks of at most that size, all of one size (2048 tokens
    make 4 chunks of 512; 2000 tokens also 4, of 500). A smaller ``token_block_size`` takes
    less memory (``token_block_size * V * 4`` bytes) and runs slower.
    """
    cap = max(16, _TOKEN_BLOCK_ELEMENTS // max(1, int(vocab_size)))
    if tokens is None or tokens <= 0:
        return cap
    chunks = -(-int(tokens) // cap)
    return -(-int(tokens) // chunks)


# ----------------------------------------------------------------------------------------------
# static options


class _Options(NamedTuple):
    """Static options of the fused head (hashable: they are part of the compiled program)."""

    vocab: int  # the whole vocabulary (summed over the vocab axis)
    layout: str  # "hv": weight [D, V]; "vh": weight [V, D]
    ignore_index: int | None
    hit: float  # smoothed target = flat + hit * [k == label]
    flat: float
    const: float  # subtracted from the loss (the target's entropy for the "others" style)
    z_loss: float
    cap: float | None  # logit soft-capping
    block: int  # vocabulary columns per block (recompute)
    token_block: int  # tokens per chunk (in_forward)
    strategy: str
    aux: bool
    vaxis: Any


class LinearCrossEntropyAux(NamedTuple):
    """Per-token by-products of :func:`linear_cross_entropy`'s forward pass (``return_aux=True``).

    Attributes:
      lse: ``logsumexp`` of the (soft-capped) logits, float32. Differentiable.
      argmax: the predicted class (the first on ties), int32.
      correct: whether ``argmax == label``; False for ignored and out-of-range labels.
      label_logprob: ``log softmax(logits)[label]``, float32, the quantity preference and RL
        losses need; 0 for ignored tokens, NaN for out-of-range labels. Differentiable.
    """

    lse: jax.Array
    argmax: jax.Array
    correct: jax.Array
    label_logprob: jax.Array


# ----------------------------------------------------------------------------------------------
# blocks


def _mm(a: jax.Array, b: jax.Array, contract: tuple[int, int], acc: jnp.dtype) -> jax.Array:
    """``a`` and ``b`` contracted on one axis each (no transpose is materialised), in ``acc``."""
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=acc)


def _weight_block(weight, start, size, o: _Options):
    axis = 1 if o.layout == "hv" else 0
    return lax.dynamic_slice_in_dim(weight, start, size, axis=axis)


def _raw_logits(h_op, w_blk, bias, start, size, o: _Options, acc):
    """Logits before soft-capping, ``[tokens, size]``, in ``acc``."""
    w_blk = w_blk.astype(h_op.dtype)
    z = _mm(h_op, w_blk, (1, 0) if o.layout == "hv" else (1, 1), acc)
    if bias is not None:
        z = z + lax.dynamic_slice_in_dim(bias, start, size).astype(acc)[None, :]
    return z


def _cap(z: jax.Array, cap: float | None) -> jax.Array:
    return z if cap is None else cap * jnp.tanh(z / cap)


def _scan_blocks(body, carry, total: int, block: int):
    """Run ``body(carry, start, size)`` over ``total`` items: a scan of full blocks, then the rest.

    The last block may be smaller; it is a separate (static-shape) call, so nothing is padded.
    """
    n_full, rem = divmod(total, block)
    if n_full:
        carry, _ = lax.scan(
            lambda c, j: (body(c, j * block, block), None),
            carry,
            jnp.arange(n_full, dtype=jnp.int32),
        )
    if rem:
        carry = body(carry, n_full * block, rem)
    return carry


def _token_masks(labels, tw, o: _Options):
    in_range, ignored, _ = label_masks(labels, o.vocab, o.ignore_index)
    valid = in_range if ignored is None else in_range & ~ignored
    return in_range, ignored, valid


# ----------------------------------------------------------------------------------------------
# per-token statistics -> loss and aux


def _finish(stats, labels, tw, offset, o: _Options, acc):
    """Per-token ``(loss, unweighted, lse, aux)`` from this device's block statistics.

    ``stats = (m, s, tgt, tot, idx)``: the running max, the exp-sum shifted by it, the label's
    logit (0 where this device does not hold the label), the sum of the logits, and the local
    argmax (a local column index). Combined across the vocab axis first, then turned into the loss.
    """
    m, s, tgt, tot, idx = stats
    vaxis = o.vaxis
    m_g = combine_max(m, vaxis)
    s = combine_exp_sum(m, s, m_g, vaxis)
    tgt = combine_sum(tgt, vaxis)
    tot = combine_sum(tot, vaxis) if o.flat else tot
    lse = finite_or_zero(m_g) + jnp.log(s)  # -inf for a token whose logits are all -inf
    loss = lse - o.hit * tgt
    if o.flat:
        loss = loss - o.flat * tot - o.const
    if o.z_loss:
        loss = loss + o.z_loss * jnp.square(lse)
    unweighted = loss
    if tw is not None:
        loss = loss * tw.astype(acc)
    in_range, ignored, valid = _token_masks(labels, tw, o)
    nan, zero = jnp.asarray(jnp.nan, acc), jnp.zeros((), acc)
    loss = jnp.where(in_range, loss, nan)
    if ignored is not None:
        loss = jnp.where(ignored, zero, loss)
    aux = None
    if o.aux:
        arg = combine_argmax(m, (idx + offset).astype(jnp.int32), m_g, vaxis)
        logprob = jnp.where(in_range, tgt - lse, nan)
        if ignored is not None:
            logprob = jnp.where(ignored, zero, logprob)
        lse_aux = lse
        if ignored is not None:
            # No gradient through an ignored token (its logits may not even be finite), in the
            # autodiff twin as in the custom VJP.
            lse_aux = jnp.where(ignored, lax.stop_gradient(lse), lse)
        aux = LinearCrossEntropyAux(lse_aux, arg, valid & (arg == labels), logprob)
    return loss, unweighted, lse, aux


def _block_stats(z, labels_local, start, size, carry, o: _Options):
    """Fold one block of (capped) logits into ``(m, s, tgt, tot, idx)``."""
    m, s, tgt, tot, idx = carry
    acc = z.dtype
    bmax = jnp.max(z, axis=1)
    if o.aux:
        barg = jnp.argmax(z, axis=1).astype(idx.dtype) + start
        # Strictly greater: on ties the earlier block keeps the argmax, like jnp.argmax.
        idx = jnp.where(bmax > m, barg, idx)
    m, s = online_lse_step(m, s, bmax, lambda sh: jnp.sum(jnp.exp(z - sh[:, None]), axis=1))
    # The label's logit by a gather (clamped, masked to the labels inside this block): a
    # compare-and-sum would be one more pass over the block, and XLA:CPU materialises its select.
    inside = (labels_local >= start) & (labels_local < start + size)
    col = jnp.clip(labels_local - start, 0, size - 1)
    picked = jnp.take_along_axis(z, col[:, None].astype(jnp.int32), axis=1)[:, 0]
    tgt = tgt + jnp.where(inside, picked, jnp.zeros((), acc))
    if o.flat:
        tot = tot + jnp.sum(z, axis=1)
    return m, s, tgt, tot, idx


def _init_stats(n, acc, refs):
    zeros = jnp.zeros((n,), acc)
    init = (jnp.full((n,), -jnp.inf, acc), zeros, zeros, zeros, jnp.zeros((n,), jnp.int32))
    return tuple(vary_like(x, *refs) for x in init)


def _local_vocab(weight, o: _Options) -> int:
    return weight.shape[1] if o.layout == "hv" else weight.shape[0]


def _forward(hidden, weight, bias, labels, tw, o: _Options, remat=False):
    """Per-token ``(loss, unweighted, lse, aux)`` in the compute dtype, streaming the vocabulary.

    ``remat=True`` wraps each block in ``jax.checkpoint``: that is the plain-autodiff twin, whose
    reverse mode then keeps only the per-block running statistics instead of every block's logits.
    """
    n = hidden.shape[0]
    local_v = _local_vocab(weight, o)
    op = jnp.result_type(hidden.dtype, weight.dtype)
    acc = compute_dtype(op)
    h_op = hidden.astype(op)
    offset, _ = vocab_slice(o.vaxis, local_v)
    labels_local = labels - offset

    def fold(carry, start, size):
        w_blk = _weight_block(weight, start, size, o)
        z = _cap(_raw_logits(h_op, w_blk, bias, start, size, o, acc), o.cap)
        return _block_stats(z, labels_local, start, size, carry, o)

    if remat:
        fold = jax.checkpoint(fold, static_argnums=(2,))
    init = _init_stats(n, acc, (hidden, weight, bias, labels, labels_local))
    stats = _scan_blocks(fold, init, local_v, o.block)
    return _finish(stats, labels, tw, offset, o, acc)


def _coefficients(labels, tw, lse, g, g_lse, g_lp, o: _Options):
    """Per-token ``(a, b, c)`` with ``dloss/dz = a * softmax - b * [k == label] - c``.

    The loss contributes ``g w ((1 + 2 z_loss lse) p - hit [k == label] - flat)``, the auxiliary
    ``lse`` ``g_lse p`` and ``label_logprob`` ``g_lp ([k == label] - p)``. Ignored tokens get
    exactly 0, out-of-range labels NaN.
    """
    acc = lse.dtype
    in_range, ignored, _ = _token_masks(labels, tw, o)
    cw = g.astype(acc)
    if tw is not None:
        cw = cw * tw.astype(acc)
    cw = jnp.where(in_range, cw, jnp.asarray(jnp.nan, acc))
    a = cw * (1.0 + 2.0 * o.z_loss * lse) if o.z_loss else cw
    b = cw * o.hit
    if g_lse is not None:
        a = a + g_lse.astype(acc)
    if g_lp is not None:
        a = a - g_lp.astype(acc)
        b = b - g_lp.astype(acc)
    c = cw * o.flat if o.flat else None
    if ignored is not None:
        zero = jnp.zeros((), acc)
        a, b = jnp.where(ignored, zero, a), jnp.where(ignored, zero, b)
        c = None if c is None else jnp.where(ignored, zero, c)
    return a, b, c


def _dz(z_raw, labels_local, start, size, lse, coefs, keep, o: _Options):
    """The block of ``dloss/dz_raw`` (through the soft cap), in the compute dtype."""
    a, b, c = coefs
    acc = z_raw.dtype
    z = _cap(z_raw, o.cap)
    cols = start + lax.broadcasted_iota(labels_local.dtype, (1, size), 1)
    dz = a[:, None] * jnp.exp(z - lse[:, None])
    dz = dz - jnp.where(cols == labels_local[:, None], b[:, None], jnp.zeros((), acc))
    if c is not None:
        dz = dz - c[:, None]
    if o.cap is not None:
        t = z / o.cap
        dz = dz * (1.0 - t * t)
    if keep is not None:
        # Exactly zero for ignored tokens, even where their logits are not finite.
        dz = jnp.where(keep, dz, jnp.zeros((), acc))
    return dz


def _dweight_block(h_t, dz_op, o: _Options, acc):
    if o.layout == "hv":
        return _mm(h_t, dz_op, (1, 0), acc)  # [D, size]
    return _mm(dz_op, h_t, (0, 1), acc)  # [size, D]


def _backward(hidden, weight, bias, labels, lse, coefs, o: _Options, init=None, blocks=None):
    """``(d_hidden, d_weight, d_bias)`` recomputing each block's logits (4 matmuls in all).

    ``init`` (optional): the starting ``(d_hidden, d_weight, d_bias)``, whose memory the result
    takes over; ``blocks`` (optional, traced): how many vocabulary blocks to run, 0 to return
    ``init`` as it is. Then the loop is a ``while`` with that trip count, the last block is
    clamped to end at the vocabulary's end, and the columns it shares with the previous block are
    masked out (nothing counted twice).
    """
    n, local_v = hidden.shape[0], _local_vocab(weight, o)
    acc = lse.dtype
    op = jnp.result_type(hidden.dtype, weight.dtype)
    offset, _ = vocab_slice(o.vaxis, local_v)
    labels_local = labels - offset
    _, ignored, _ = _token_masks(labels, None, o)
    keep = None if ignored is None else ~ignored[:, None]
    h_op = hidden.astype(op)
    # hidden^T materialised once ([D, tokens], small): ``h_t @ dz`` is a plain matmul, markedly
    # faster on CPU than contracting both operands over their leading (token) axis.
    h_t = jnp.transpose(h_op)
    w_axis = 1 if o.layout == "hv" else 0
    contract = (1, 1) if o.layout == "hv" else (1, 0)

    def grad_block(carry, start, size, fresh=None):
        d_hidden, d_weight, d_bias = carry
        w_blk = _weight_block(weight, start, size, o)
        z_raw = _raw_logits(h_op, w_blk, bias, start, size, o, acc)
        dz = _dz(z_raw, labels_local, start, size, lse, coefs, keep, o)
        if fresh is not None:
            dz = jnp.where(fresh, dz, jnp.zeros((), acc))
        dz_op = dz.astype(op)
        d_hidden = d_hidden + _mm(dz_op, w_blk.astype(op), contract, acc)
        dw_blk = _dweight_block(h_t, dz_op, o, acc).astype(weight.dtype)
        if fresh is not None:
            old = lax.dynamic_slice_in_dim(d_weight, start, size, axis=w_axis)
            dw_blk = jnp.where(fresh if o.layout == "hv" else fresh.T, dw_blk, old)
        d_weight = lax.dynamic_update_slice_in_dim(d_weight, dw_blk, start, axis=w_axis)
        if d_bias is not None:
            db_blk = jnp.sum(dz, axis=0).astype(d_bias.dtype)
            if fresh is not None:
                old = lax.dynamic_slice_in_dim(d_bias, start, size, axis=0)
                db_blk = jnp.where(fresh[0], db_blk, old)
            d_bias = lax.dynamic_update_slice_in_dim(d_bias, db_blk, start, axis=0)
        return d_hidden, d_weight, d_bias

    if init is None:
        init = (
            jnp.zeros((n, hidden.shape[1]), acc),
            jnp.zeros(weight.shape, weight.dtype),
            None if bias is None else jnp.zeros(bias.shape, bias.dtype),
        )
    refs = (hidden, weight, bias, labels, lse, *coefs)
    init = tuple(None if x is None else vary_like(x, *refs) for x in init)
    if blocks is None:
        d_hidden, d_weight, d_bias = _scan_blocks(grad_block, init, local_v, o.block)
    else:
        size = o.block
        ragged = local_v % size != 0

        def body(j, carry):
            nominal = j * size
            start = jnp.minimum(nominal, local_v - size)
            fresh = None
            if ragged:
                fresh = start + lax.broadcasted_iota(jnp.int32, (1, size), 1) >= nominal
            return grad_block(carry, start, size, fresh)

        d_hidden, d_weight, d_bias = lax.fori_loop(0, blocks, body, init)
    return d_hidden.astype(hidden.dtype), d_weight, d_bias


def _forward_with_grads(hidden, weight, bias, labels, tw, o: _Options):
    """The forward plus the gradients for a unit cotangent, one chunk of tokens at a time.

    Per chunk: its logits ``[chunk, V_local]`` come from one matmul into a buffer that the rest
    of the chunk rewrites in place. A first loop over vocabulary blocks folds them into the
    per-token statistics (so ``lse`` is known before any softmax is needed); a second forms each
    block of ``dz``, writes it over its logits and adds ``hidden_chunk^T @ dz_blk`` into
    ``d_weight[blk]`` (in place: the temporary is a block, never the size of the weight); then
    ``d_hidden_chunk = dz @ W^T`` is one matmul over the whole vocabulary, written into its rows
    of ``d_hidden``. 3 matmuls in all instead of 4, and the only chunk-sized buffer is the one
    holding the logits and then ``dz``.

    The chunks are equal: when ``token_block`` does not divide the tokens, the last chunk is
    moved back to end at the last token. The tokens it shares with the chunk before are computed
    twice (their loss and ``d_hidden`` rows are written again with the same values) and masked
    out of ``d_weight`` and ``d_bias``. Returns ``(loss, unweighted, lse, aux, (d_hidden,
    d_weight, d_bias))``.
    """
    n, d = hidden.shape
    size = o.token_block
    n_chunks = -(-n // size)
    overlap = n_chunks * size - n
    local_v = _local_vocab(weight, o)
    op = jnp.result_type(hidden.dtype, weight.dtype)
    acc = compute_dtype(op)
    offset, _ = vocab_slice(o.vaxis, local_v)
    h_op, w_op = hidden.astype(op), weight.astype(op)
    w_axis = 1 if o.layout == "hv" else 0
    contract = (1, 1) if o.layout == "hv" else (1, 0)

    def chunk(carry, j):
        d_hidden, d_weight, d_bias = carry
        t0 = jnp.minimum(j * size, n - size)
        h = lax.dynamic_slice_in_dim(h_op, t0, size, axis=0)
        y = lax.dynamic_slice_in_dim(labels, t0, size, axis=0)
        w = None if tw is None else lax.dynamic_slice_in_dim(tw, t0, size, axis=0)
        y_local = y - offset
        z = _raw_logits(h, w_op, bias, 0, local_v, o, acc)

        # The statistics read the buffer block by block as a loop carry, so the loop below can
        # rewrite it in place (a plain reduction over it would make XLA copy it first).
        def stats_block(inner, start, bsize):
            z, stats = inner
            zb = _cap(lax.dynamic_slice_in_dim(z, start, bsize, axis=1), o.cap)
            return z, _block_stats(zb, y_local, start, bsize, stats, o)

        init = _init_stats(size, acc, (h, y_local))
        z, stats = _scan_blocks(stats_block, (z, init), local_v, o.block)
        loss, unweighted, lse, aux = _finish(stats, y, w, offset, o, acc)
        coefs = _coefficients(y, w, lse, jnp.ones((size,), acc), None, None, o)
        _, ignored, _ = _token_masks(y, w, o)
        keep = None if ignored is None else ~ignored[:, None]
        fresh = None
        if overlap:
            fresh = t0 + lax.broadcasted_iota(jnp.int32, (size, 1), 0) >= j * size
        # [D, chunk] once per chunk: the weight-gradient matmul is then a plain one. Tokens an
        # earlier chunk already counted are zero columns here.
        h_t = jnp.transpose(h if fresh is None else jnp.where(fresh, h, jnp.zeros((), op)))

        def grad_block(inner, start, bsize):
            z, d_weight, d_bias = inner
            zb = lax.dynamic_slice_in_dim(z, start, bsize, axis=1)
            dz = _dz(zb, y_local, start, bsize, lse, coefs, keep, o)
            z = lax.dynamic_update_slice_in_dim(z, dz, start, axis=1)
            dz_op = dz.astype(op)
            old = lax.dynamic_slice_in_dim(d_weight, start, bsize, axis=w_axis)
            d_weight = lax.dynamic_update_slice_in_dim(
                d_weight, old + _dweight_block(h_t, dz_op, o, acc), start, axis=w_axis
            )
            if d_bias is not None:
                counted = dz if fresh is None else jnp.where(fresh, dz, jnp.zeros((), acc))
                old_b = lax.dynamic_slice_in_dim(d_bias, start, bsize, axis=0)
                d_bias = lax.dynamic_update_slice_in_dim(
                    d_bias, old_b + jnp.sum(counted, axis=0), start, axis=0
                )
            return z, d_weight, d_bias

        dz, d_weight, d_bias = _scan_blocks(grad_block, (z, d_weight, d_bias), local_v, o.block)
        d_h = _mm(dz.astype(op), w_op, contract, acc)
        d_hidden = lax.dynamic_update_slice_in_dim(d_hidden, d_h, t0, axis=0)
        return (d_hidden, d_weight, d_bias), (loss, unweighted, lse, aux)

    carry = (
        jnp.zeros((n, d), acc),
        jnp.zeros(weight.shape, acc),
        None if bias is None else jnp.zeros(bias.shape, acc),
    )
    carry = tuple(None if x is None else vary_like(x, hidden, weight, bias, labels) for x in carry)
    carry, ys = lax.scan(chunk, carry, jnp.arange(n_chunks, dtype=jnp.int32))

    def tokens(x):  # [chunks, size, ...] -> [n, ...]: the last chunk's repeated head dropped
        if not overlap:
            return x.reshape(n, *x.shape[2:])
        head = x[:-1].reshape((n_chunks - 1) * size, *x.shape[2:])
        return jnp.concatenate([head, x[-1, overlap:]])

    loss, unweighted, lse, aux = jax.tree.map(tokens, ys)
    return loss, unweighted, lse, aux, carry


# ----------------------------------------------------------------------------------------------
# custom VJPs


def _aux_cotangents(aux_ct, o: _Options):
    if not o.aux or aux_ct is None:
        return None, None
    return aux_ct.lse, aux_ct.label_logprob


def _dtoken_weights(labels, tw, unweighted, g, o: _Options):
    if tw is None:
        return None
    in_range, ignored, _ = _token_masks(labels, tw, o)
    acc = unweighted.dtype
    d = jnp.where(in_range, g.astype(acc) * unweighted, jnp.asarray(jnp.nan, acc))
    if ignored is not None:
        d = jnp.where(ignored, jnp.zeros((), acc), d)
    return d.astype(tw.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _fused(hidden, weight, bias, labels, tw, o):
    loss, _, _, aux = _forward(hidden, weight, bias, labels, tw, o)
    return loss, aux


def _fused_fwd(hidden, weight, bias, labels, tw, o):
    loss, unweighted, lse, aux = _forward(hidden, weight, bias, labels, tw, o)
    keep = None if tw is None else unweighted
    return (loss, aux), (hidden, weight, bias, labels, tw, lse, keep)


def _fused_bwd(o, residuals, cts):
    hidden, weight, bias, labels, tw, lse, unweighted = residuals
    g, aux_ct = cts
    g_lse, g_lp = _aux_cotangents(aux_ct, o)
    coefs = _coefficients(labels, tw, lse, g, g_lse, g_lp, o)
    grads = _backward(hidden, weight, bias, labels, lse, coefs, o)
    grads = tuple(sum_like(ct, x) for ct, x in zip(grads, (hidden, weight, bias), strict=True))
    d_tw = sum_like(_dtoken_weights(labels, tw, unweighted, g, o), tw)
    return (*grads, None, d_tw)


_fused.defvjp(_fused_fwd, _fused_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _fused_in_forward(hidden, weight, bias, labels, tw, o):
    loss, _, _, aux = _forward(hidden, weight, bias, labels, tw, o)
    return loss, aux


def _fused_in_forward_fwd(hidden, weight, bias, labels, tw, o):
    loss, unweighted, lse, aux, grads = _forward_with_grads(hidden, weight, bias, labels, tw, o)
    keep = None if tw is None else unweighted
    return (loss, aux), (hidden, weight, bias, labels, tw, lse, keep, grads)


def _fused_in_forward_bwd(o, residuals, cts):
    hidden, weight, bias, labels, tw, lse, unweighted, (d_hidden, d_weight, d_bias) = residuals
    g, aux_ct = cts
    g_lse, g_lp = _aux_cotangents(aux_ct, o)
    acc = d_hidden.dtype
    g = g.astype(acc)
    # The forward's gradients are those of a unit cotangent. d_hidden scales per token, but
    # d_weight and d_bias are sums over tokens: they scale only when every contributing token has
    # the same cotangent (any mean or sum of the loss, per-token weights passed as token_weights)
    # and the auxiliary outputs get none. Any other cotangent takes the exact recomputing backward.
    _, _, valid = _token_masks(labels, tw, o)
    contributing = valid if tw is None else valid & (tw != 0)
    hi = jnp.max(jnp.where(contributing, g, -jnp.inf))
    lo = jnp.min(jnp.where(contributing, g, jnp.inf))
    anyone = jnp.any(contributing)
    uniform = (hi == lo) | ~anyone
    for extra in (g_lse, g_lp):
        if extra is not None:
            uniform = uniform & jnp.all(jnp.where(valid, extra, 0) == 0)
    zero = jnp.zeros((), acc)
    scale = jnp.where(anyone, hi, zero)
    start = (
        jnp.where(uniform, g[:, None] * d_hidden, zero),
        (scale * d_weight).astype(weight.dtype),
        None if d_bias is None else (scale * d_bias).astype(bias.dtype),
    )
    # A while loop of zero trips on the fast path (a lax.cond would give the weight gradient a
    # second weight-sized buffer): it overwrites every block of the scaled gradients otherwise.
    n_blocks = -(-_local_vocab(weight, o) // o.block)
    coefs = _coefficients(labels, tw, lse, g, g_lse, g_lp, o)
    blocks = jnp.where(uniform, 0, n_blocks)
    grads = _backward(hidden, weight, bias, labels, lse, coefs, o, init=start, blocks=blocks)
    grads = tuple(sum_like(ct, x) for ct, x in zip(grads, (hidden, weight, bias), strict=True))
    d_tw = sum_like(_dtoken_weights(labels, tw, unweighted, g, o), tw)
    return (*grads, None, d_tw)


_fused_in_forward.defvjp(_fused_in_forward_fwd, _fused_in_forward_bwd)


# ----------------------------------------------------------------------------------------------
# validation and public API

LAYOUTS = ("hv", "vh")


def _check_block(name, arg, value):
    if value is not None and (
        isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1
    ):
        raise ValueError(f"{name}: `{arg}` must be None or an int >= 1; got {value!r}.")


def _zero_ignored_rows(hidden: jax.Array, labels: jax.Array, o: Any) -> jax.Array:
    """Non-finite entries of ignored tokens' hidden rows as zeros: they must reach no gradient.

    The kernel already gives those tokens a zero loss and cotangent, but ``0 * NaN`` in the
    weight gradient's matmul is NaN. Finite ignored rows pass unchanged, so their auxiliary
    outputs (logsumexp, argmax) stay those of the real row.
    """
    if o.ignore_index is None:
        return hidden
    keep = (labels != o.ignore_index)[:, None] | jnp.isfinite(hidden)
    return jnp.where(keep, hidden, jnp.zeros((), hidden.dtype))


def _prepare(
    name,
    hidden,
    weight,
    labels,
    bias,
    token_weights,
    weight_layout,
    ignore_index,
    label_smoothing,
    label_smoothing_style,
    z_loss,
    logit_soft_cap,
    strategy,
    block_size,
    token_block_size,
    return_aux,
    vocab_axis_name,
):
    """Trace-time checks; every message names the function, the argument, expected and got."""
    hidden, weight, labels = jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(labels)
    bias = None if bias is None else jnp.asarray(bias)
    for arg, x in (("hidden", hidden), ("weight", weight), ("bias", bias)):
        if x is not None and not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name}: `{arg}` must be a floating array; got dtype {x.dtype}.")
    layout = static_choice(name, "weight_layout", weight_layout, LAYOUTS)
    want = "[D, V]" if layout == "hv" else "[V, D]"
    if hidden.ndim < 1:
        raise ValueError(f"{name}: `hidden` must have shape [..., D]; got a scalar.")
    if weight.ndim != 2:
        raise ValueError(
            f"{name}: `weight` must have shape {want}; got shape {tuple(weight.shape)}."
        )
    d_axis = 0 if layout == "hv" else 1
    if hidden.shape[-1] != weight.shape[d_axis]:
        raise ValueError(
            f"{name}: the last axis of `hidden` must equal the D axis of `weight` {want}; got "
            f"hidden {tuple(hidden.shape)} and weight {tuple(weight.shape)}."
        )
    local_v = weight.shape[1 - d_axis]
    if local_v < 1:
        raise ValueError(f"{name}: `weight` must have at least one vocabulary entry; got 0.")
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
    if bias is not None and tuple(bias.shape) != (local_v,):
        raise ValueError(
            f"{name}: `bias` must have shape [V] = ({local_v},); got {tuple(bias.shape)}."
        )
    tw = None
    if token_weights is not None:
        tw = as_floating(name, "token_weights", token_weights)
        if tuple(tw.shape) != tuple(labels.shape):
            raise ValueError(
                f"{name}: `token_weights` must have the shape of `labels`, "
                f"{tuple(labels.shape)}; got {tuple(tw.shape)}."
            )
        tw = tw.reshape(-1)
    ignore = static_ignore_index(name, ignore_index)
    ls = static_float(name, "label_smoothing", label_smoothing, 0.0, 1.0)
    style = static_choice(name, "label_smoothing_style", label_smoothing_style, SMOOTHING_STYLES)
    zl = static_float(name, "z_loss", z_loss, 0.0, None)
    cap = None
    if logit_soft_cap is not None:
        cap = static_float(name, "logit_soft_cap", logit_soft_cap, 0.0, None)
        if cap == 0.0:
            raise ValueError(f"{name}: `logit_soft_cap` must be None or > 0; got 0.0.")
    strategy = static_choice(name, "strategy", strategy, STRATEGIES)
    _check_block(name, "block_size", block_size)
    _check_block(name, "token_block_size", token_block_size)
    if not isinstance(return_aux, (bool, np.bool_)):
        raise TypeError(f"{name}: `return_aux` must be True or False; got {return_aux!r}.")
    vaxis = static_axis_name(name, vocab_axis_name)
    vocab = global_class_count(name, vaxis, local_v)
    n = math.prod(labels.shape)
    token_block = (
        default_token_block_size(local_v, n) if token_block_size is None else int(token_block_size)
    )
    token_block = max(1, min(token_block, n))
    block = (
        default_block_size(local_v, strategy, token_block)
        if block_size is None
        else min(int(block_size), local_v)
    )
    hit, flat, const = smoothing_terms(ls, style, vocab)
    o = _Options(
        vocab, layout, ignore, hit, flat, const, zl, cap, block, token_block, strategy,
        bool(return_aux), vaxis,
    )  # fmt: skip
    h2 = hidden.reshape(-1, hidden.shape[-1])
    return h2, weight, bias, index_dtype(labels).reshape(-1), tw, o


def _reshape_out(loss, aux, shape):
    loss = loss.reshape(shape)
    if aux is None:
        return loss
    return loss, LinearCrossEntropyAux(*(x.reshape(shape) for x in aux))


def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    weight_layout: str = "hv",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    label_smoothing_style: str = "uniform",
    z_loss: float = 0.0,
    logit_soft_cap: float | None = None,
    token_weights: ArrayLike | None = None,
    return_aux: bool = False,
    strategy: str = DEFAULT_STRATEGY,
    block_size: int | None = None,
    token_block_size: int | None = None,
    vocab_axis_name: str | tuple[str, ...] | None = None,
) -> jax.Array | tuple[jax.Array, LinearCrossEntropyAux]:
    """Per-token cross-entropy of the logits ``hidden @ weight + bias`` without materialising them.

    With ``z = cap * tanh((hidden @ W + bias) / cap)`` (no cap when ``logit_soft_cap=None``),
    ``lse = logsumexp(z)`` and the smoothed target ``t`` (one-hot when ``label_smoothing=0``)::

        loss = token_weight * (-sum(t * log_softmax(z)) - H(t) + z_loss * lse ** 2)

    ``label_smoothing_style="uniform"`` is PyTorch's and Keras' ``t = (1 - ls) onehot + ls / V``
    with ``H = 0``; ``"others"`` is T5X's and praxis': ``1 - ls`` on the label, ``ls / (V - 1)``
    on each other class, and ``H(t)`` the target's entropy, so the minimum loss is 0. The value
    and every gradient equal (to float32 rounding) those of
    :func:`~jaxloss.ops.sparse_softmax_cross_entropy` on the materialised logits, with a few
    ``[tokens, block]`` buffers instead of several ``[tokens, vocab]`` ones.

    Args:
      hidden: ``[..., D]`` float activations (any leading token axes; bfloat16 is fine).
      weight: the projection, ``[D, V]`` for ``weight_layout="hv"`` (the transpose of a
        ``torch.nn.Linear`` weight) or ``[V, D]`` for ``"vh"`` (a tied input embedding table, used
        as it is: no transpose is copied).
      labels: integer class indices of shape ``hidden.shape[:-1]`` (global ids, also when the
        vocabulary is sharded).
      bias: optional ``[V]`` bias.
      weight_layout: ``"hv"`` or ``"vh"``, see ``weight``.
      ignore_index: tokens whose label equals it get a loss of exactly 0 and a zero gradient.
      label_smoothing: ``ls`` in ``[0, 1]``.
      label_smoothing_style: ``"uniform"`` or ``"others"``, see above.
      z_loss: ``>= 0``; adds ``z_loss * lse**2`` (the PaLM auxiliary loss).
      logit_soft_cap: ``None`` or ``> 0``: logits pass through ``cap * tanh(z / cap)`` (Gemma 2)
        in the forward and the backward alike.
      token_weights: optional float weights of shape ``labels.shape``, multiplying each token's
        loss. Differentiable.
      return_aux: also return a :class:`LinearCrossEntropyAux` (per-token ``lse``, ``argmax``,
        ``correct`` and ``label_logprob``) computed in the same pass over the vocabulary.
      strategy: how the gradient is computed (both give the same values and gradients):

        * ``"recompute"``: the backward recomputes each block's logits (4 matmuls in all); the
          only residual is the per-token ``lse``.
        * ``"in_forward"``: the forward takes chunks of ``token_block_size`` tokens against the
          whole vocabulary and computes the gradients at once (3 matmuls); the residual is the
          gradients themselves (``d_weight`` in float32, written into the output buffer) and
          the temporaries are one chunk of logits, ``[token_block_size, V]``. Fast when every
          contributing token gets the same cotangent (any mean or sum of the loss, with
          per-token weights passed as ``token_weights`` and padding as ``ignore_index``): the
          backward only scales. Any other cotangent (e.g. ``sample_weight`` applied to the
          per-token loss, gradients through the auxiliary outputs) is still exact: the
          backward then recomputes like ``"recompute"`` (7 matmuls in all).

        Measured at N=2048, D=1024, V=65536 float32 on a 2-core CPU (time over the unfused
        optax head's, below 1 is faster; ``benchmarks/results``): ``"recompute"`` about 0.9
        with 40 MiB of temp memory against optax's 1024 MiB; ``"in_forward"`` 0.71 with its
        default 512-token chunk (154 MiB), 0.84-0.92 with 128-token chunks (35 MiB); torch's
        ``linear_cross_entropy`` with ``batch_chunk_size=1024`` (a 256 MiB logits chunk)
        0.58-0.71, level with ``"in_forward"`` (0.93-1.09x torch's speed over five runs). The
        default is ``"recompute"``: within 1/20 of the unfused head's memory ``"in_forward"``'s
        edge is within the run-to-run spread, and ``"recompute"`` needs no second backward for
        other cotangents. On an H200 the unfused head is the fastest and
        ``"recompute"`` the faster fused one (docs/kernels.md).
      block_size: vocabulary columns per block; ``None`` picks :func:`default_block_size` (2048
        for ``"recompute"``, 4096 on a GPU; for ``"in_forward"`` 4096 with chunks of 256 tokens
        or more, else 512). The vocabulary need not be a multiple.
      token_block_size: tokens per chunk (``"in_forward"``); ``None`` picks
        :func:`default_token_block_size` (512 at V=65536, evened out over the tokens). The
        tokens need not be a multiple of it.
      vocab_axis_name: inside ``jax.shard_map``, the mesh axis (or axes) the vocabulary axis of
        ``weight`` (and ``bias``) is split over, ``hidden`` and ``labels`` being replicated over
        it. Each device streams its own slice; the per-token statistics are combined with
        ``[tokens]``-sized ``pmax``/``psum``; the loss (and aux) come back replicated over that
        axis. The backward's only collective is the ``psum`` of ``d_hidden`` over that axis (the
        transpose of ``hidden``'s replication), never a ``[tokens, vocab]`` one.

    Returns:
      The per-token loss, shape ``hidden.shape[:-1]``, float32 (float64 for float64 operands);
      with ``return_aux=True``, ``(loss, aux)``.

    Raises:
      TypeError: non-float ``hidden``/``weight``/``bias``/``token_weights``, non-integer
        ``labels``, a traced option.
      ValueError: shapes that do not line up, an option out of range or unknown, a
        ``vocab_axis_name`` that the enclosing ``shard_map`` does not bind.

    Notes:
      * Precision: the matmuls run on the operands' dtype with ``preferred_element_type=float32``;
        the logsumexp and the loss are float32; ``d_hidden`` and ``d_bias`` are accumulated in
        float32. Each gradient comes back in its operand's dtype.
      * A label outside ``[0, V)`` that is not ``ignore_index`` cannot be caught under ``jit``:
        as in :func:`~jaxloss.ops.sparse_softmax_cross_entropy`, its loss is ``NaN`` and so is its
        gradient (which, through ``d_weight``, poisons the whole weight gradient, exactly as the
        unfused composition does): loud rather than silently wrong.
      * Reverse mode only (``jax.custom_vjp``). For forward-mode autodiff use
        :func:`linear_cross_entropy_jvp`.
      * Every option except the arrays is a static Python value (part of the compiled program).

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

      Token accuracy and label log-probabilities from the same pass:

      >>> weight = jnp.eye(4)                     # [V, D] = [D, V]: class k scores hidden[k]
      >>> hidden = jnp.array([[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
      >>> loss, aux = linear_cross_entropy(hidden, weight, jnp.array([0, 1]), weight_layout="vh",
      ...                                  return_aux=True)
      >>> aux.argmax, aux.correct
      (Array([0, 2], dtype=int32), Array([ True, False], dtype=bool))
      >>> bool(jnp.allclose(aux.label_logprob, -loss))  # the loss is -log p(label) here
      True
    """
    h2, weight, bias, labels2, tw, o = _prepare(
        _NAME, hidden, weight, labels, bias, token_weights, weight_layout, ignore_index,
        label_smoothing, label_smoothing_style, z_loss, logit_soft_cap, strategy, block_size,
        token_block_size, return_aux, vocab_axis_name,
    )  # fmt: skip
    h2 = _zero_ignored_rows(h2, labels2, o)
    if o.strategy == "recompute":
        loss, aux = _fused(h2, weight, bias, labels2, tw, o)
    else:
        loss, aux = _fused_in_forward(h2, weight, bias, labels2, tw, o)
    return _reshape_out(loss, aux, jnp.shape(labels))


def linear_cross_entropy_jvp(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    weight_layout: str = "hv",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    label_smoothing_style: str = "uniform",
    z_loss: float = 0.0,
    logit_soft_cap: float | None = None,
    token_weights: ArrayLike | None = None,
    return_aux: bool = False,
    block_size: int | None = None,
) -> jax.Array | tuple[jax.Array, LinearCrossEntropyAux]:
    """:func:`linear_cross_entropy` with every autodiff mode (no ``custom_vjp``).

    The same blocked forward, written as plain differentiable JAX with each block under
    ``jax.checkpoint``: same values, and it works under ``jax.jvp``, ``jax.jacfwd``,
    ``jax.hessian`` and forward-over-reverse Hessian-vector products. Forward mode streams the
    tangents block by block (no ``[tokens, vocab]`` array); reverse mode recomputes each block
    like the fused kernel but is slower (autodiff accumulates ``d_weight`` through a full-size
    buffer per block), so prefer :func:`linear_cross_entropy` for training. It takes every
    option of :func:`linear_cross_entropy` except ``strategy``, ``token_block_size`` and
    ``vocab_axis_name``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss.ops import linear_cross_entropy_jvp
      >>> h, w, y = jnp.ones((3, 4)), jnp.zeros((4, 5)), jnp.array([0, 1, 2])
      >>> primal, tangent = jax.jvp(lambda h: linear_cross_entropy_jvp(h, w, y), (h,), (h,))
      >>> print(f"{float(primal[0]):.4f} {float(tangent[0]):.1f}")  # log(5); zero weights
      1.6094 0.0
    """
    h2, weight, bias, labels2, tw, o = _prepare(
        _NAME + "_jvp", hidden, weight, labels, bias, token_weights, weight_layout, ignore_index,
        label_smoothing, label_smoothing_style, z_loss, logit_soft_cap, "recompute", block_size,
        None, return_aux, None,
    )  # fmt: skip
    h2 = _zero_ignored_rows(h2, labels2, o)
    loss, _, _, aux = _forward(h2, weight, bias, labels2, tw, o, remat=True)
    return _reshape_out(loss, aux, jnp.shape(labels))


def causal_lm_shift(
    tokens: ArrayLike,
    *,
    ignore_index: int = -100,
    valid: ArrayLike | None = None,
    axis: int = -1,
) -> jax.Array:
    """Next-token labels for a causal language model: position ``t`` is trained to predict ``t+1``.

    ``labels[..., t] = tokens[..., t + 1]`` along ``axis``, and the last position, which has no
    next token, gets ``ignore_index``; so does every position whose next token is not ``valid``
    (padding). The sequence keeps its length, so the hidden states of every position pair with
    the result as they are (no ``[:, :-1]`` slice, no copy of the activations, and the sequence
    axis stays divisible for sharding).

    Args:
      tokens: integer token ids, e.g. ``[batch, seq]``.
      ignore_index: the label given to positions without a next token to predict.
      valid: optional boolean mask of ``tokens``' shape, False on padding.
      axis: the sequence axis.

    Returns:
      int32 labels of ``tokens``' shape (int64 stays int64).

    Raises:
      TypeError: non-integer ``tokens``, a non-int ``ignore_index``.
      ValueError: ``valid`` of another shape, a bad ``axis``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops import causal_lm_shift
      >>> causal_lm_shift(jnp.array([[5, 6, 7, 0]]), valid=jnp.array([[1, 1, 1, 0]]) > 0)
      Array([[   6,    7, -100, -100]], dtype=int32)
    """
    name = "causal_lm_shift"
    tokens = jnp.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"{name}: `tokens` must hold integer token ids; got dtype {tokens.dtype}.")
    ignore = static_ignore_index(name, ignore_index)
    if ignore is None:
        raise TypeError(f"{name}: `ignore_index` must be a Python int; got None.")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: `axis` must be an int; got {axis!r}.")
    if not -tokens.ndim <= axis < tokens.ndim:
        raise ValueError(
            f"{name}: `axis`={axis} is out of range for `tokens` of rank {tokens.ndim}."
        )
    axis = int(axis) % tokens.ndim
    tokens = index_dtype(tokens)
    fill = jnp.full_like(lax.slice_in_dim(tokens, 0, 1, axis=axis), ignore)
    labels = jnp.concatenate([lax.slice_in_dim(tokens, 1, None, axis=axis), fill], axis=axis)
    if valid is not None:
        valid = jnp.asarray(valid)
        if valid.shape != tokens.shape:
            raise ValueError(
                f"{name}: `valid` must have the shape of `tokens`, {tokens.shape}; "
                f"got {valid.shape}."
            )
        nxt = jnp.concatenate(
            [lax.slice_in_dim(valid, 1, None, axis=axis), jnp.zeros_like(fill, bool)], axis=axis
        )
        labels = jnp.where(nxt.astype(bool), labels, ignore)
    return labels
