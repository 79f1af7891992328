"""Softmax and sigmoid cross-entropy kernels with hand-written gradients.

Three kernels, prediction first, per-example output, no reduction (like ``optax`` / ``jax.nn``):

* :func:`sparse_softmax_cross_entropy` -- logits against integer class labels;
* :func:`softmax_cross_entropy` -- logits against a target distribution (one-hot or soft);
* :func:`sigmoid_binary_cross_entropy` -- elementwise logits against binary targets.

How the softmax kernels are differentiated (``jax.custom_vjp``)
-------------------------------------------------------------
The forward pass computes the per-row ``lse = logsumexp(logits)`` and picks the label's logit
with a gather; the only residual it keeps is ``lse`` (``[rows]``), besides the logits and labels
that are alive anyway. For integer labels the common case is a single streaming pass, an
unshifted ``sum(exp(logits))`` (see ``_label_logsumexp``), with a max-shifted fallback for rows
that would overflow; dense targets take one more pass, for the target sum
(``_dense_lse_and_ce``). Under ``jax.vmap`` the fallback's ``lax.cond`` gets a batched predicate
and runs both branches, so a vmapped call pays for the fallback too; a call on the whole batch
does not. The backward pass is one fused elementwise pass over the logits::

    dlogits = g * ((1 + 2 * z_loss * lse) * exp(logits - lse) - smoothed_target)

For integer labels the smoothed target ``flat + hit * [c == label]`` is never built: the
uniform part is a scalar in the loop and the label part is an ``iota == label`` select in the same
loop. No one-hot array exists in the forward or the backward, with or without label smoothing. Any
class ``axis`` is supported without transposing. Because the backward reads each logit once and
writes its gradient once, with nothing else in between, XLA writes the gradient in place over the
logits when they die there, as they do in a training step whose logits come from a layer: the loss
then adds no ``[N, V]`` buffer to the step (optax's autodiff keeps a second one).

Low precision: bfloat16/float16 logits are read as they are and upcast inside the fused loops; all
math is float32, the loss comes back in float32 (accurate to float32, unlike a bfloat16 logsumexp),
and the gradient comes back in the logits' dtype. float64 logits are computed in float64.

Vocab-parallel (``vocab_axis_name``)
------------------------------------
Inside ``jax.shard_map``, with the class axis of the logits split over the mesh axis
``vocab_axis_name`` (contiguous equal slices in mesh order, what ``PartitionSpec(..., "model")``
gives), each device reduces only its slice: the row max is combined with ``pmax``, the exp-sums
(shifted by the global max), the label's logit (taken on the device that owns the label; labels are
global class ids) and, for label smoothing, the sums of the logits with ``psum``: a few ``[rows]``
collectives, never a ``[rows, classes]`` one. The loss comes back replicated over the vocab axis;
the backward is the same fused local pass with the global ``lse`` saved by the forward, so it needs
no communication at all. The unshifted one-pass forward is not used there (its fallback would need
collectives inside a ``lax.cond``); the vocab-parallel forward always takes the max shift.

Forward-mode autodiff
---------------------
A ``jax.custom_vjp`` function cannot be differentiated in forward mode (``jax.jvp``,
``jax.jacfwd``, ``jax.hessian``). Each kernel therefore has a twin with the same signature and the
same values that supports every transformation: :func:`sparse_softmax_cross_entropy_jvp`,
:func:`softmax_cross_entropy_jvp` and :func:`sigmoid_binary_cross_entropy_jvp`. The softmax twins
are ``jax.custom_jvp`` functions whose tangent rule runs under ``jax.checkpoint``, so their
reverse-mode gradient also keeps only ``lse`` as a residual and recomputes the softmax; swap the
name to get Hessians and Hessian-vector products::

    hvp = jax.jvp(jax.grad(lambda z: ops.sparse_softmax_cross_entropy_jvp(z, y).sum()), (x,), (v,))

The twins take every option except ``vocab_axis_name``.

Bad labels
----------
A label outside ``[0, num_classes)`` that is not ``ignore_index`` cannot be caught under ``jit``.
Its row's loss is ``NaN`` and its row of the gradient is ``NaN`` (loud, so that the bug shows up in
the first logged loss); every other row is computed exactly as if the bad row were not there.
Rows whose label equals ``ignore_index`` get a loss of exactly 0 and a gradient of exactly 0, even
when their logits are not finite.
"""

from __future__ import annotations

import functools
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
    exp_sum_is_safe,
    finite_or_zero,
    index_dtype,
    label_masks,
    logsumexp,
    normalize_axis,
    private_copy,
    smoothing_terms,
    static_axis_name,
    static_choice,
    static_float,
    static_ignore_index,
)
from jaxloss.ops._sharding import (
    combine_max,
    combine_sum,
    global_class_count,
    sum_like,
    vary_like,
    vocab_slice,
)

__all__ = [
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_jvp",
    "softmax_cross_entropy",
    "softmax_cross_entropy_jvp",
    "sparse_softmax_cross_entropy",
    "sparse_softmax_cross_entropy_jvp",
]


def _label_logsumexp(
    x: jax.Array, picked: jax.Array, axis: int, with_sum: bool = False
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """``(lse, lse - picked, sum(x) or None)`` in one streaming pass over ``x`` in the common case.

    ``x`` may be in a low-precision dtype; ``picked`` (the label's logit) is in the compute dtype.
    ``with_sum`` (label smoothing needs the plain sum of the logits) adds ``sum(x)``: a second
    plain reduction for float32/float64 logits. For bfloat16/float16 logits XLA:CPU would
    materialise the upcast shared by two reductions as a float32 copy, so both sums then come from
    one two-output reduction, which fuses the upcast but leaves XLA:CPU's fast reduction path
    (about 3x slower, summed less accurately: ~1e-5 relative, far below the logits' own rounding).

    The usual stable logsumexp reads the logits twice (the row max, then the sum of ``exp``). But
    no shift is needed as long as nothing overflows or underflows, which holds for every logit in
    ``(-80, 80)``: ``S = sum(exp(x))`` is one pass whose only operation per element is the ``exp``
    (a per-row shift inside the reduction costs XLA:CPU ~25% of the pass). The loss is then taken
    as ``log(S * exp(-picked))`` rather than ``log(S) - picked``: the product is ``1 + r`` with
    ``r`` the other classes' mass, so a confident prediction's small loss keeps float32 accuracy
    (1e-7 absolute, the resolution of ``1 + r``, as with a max shift) instead of inheriting the
    rounding of ``log(S) ~ picked`` (the logit's ulp, ~2e-6 at 20); it is clamped at 0. If some
    row would overflow or underflow (logits beyond about +-80, non-finite logits), the whole batch
    is recomputed with the max shift under a ``lax.cond``, so the result is always the stable one.
    """
    cdt = picked.dtype
    axis = axis % x.ndim
    xc = x.astype(cdt)
    sum_x = None
    if with_sum and x.dtype != cdt:
        zero = np.zeros((), cdt)
        total, sum_x = lax.reduce(
            (jnp.exp(xc), xc), (zero, zero), lambda a, b: (a[0] + b[0], a[1] + b[1]), (axis,)
        )
        total, sum_x = jnp.expand_dims(total, axis), jnp.expand_dims(sum_x, axis)
    else:
        total = jnp.sum(jnp.exp(xc), axis=axis, keepdims=True)
        if with_sum:
            sum_x = jnp.sum(xc, axis=axis, keepdims=True)
    ratio = total * jnp.exp(-picked)
    fast_ok = exp_sum_is_safe(total) & jnp.all(jnp.isfinite(ratio) & (ratio > 0))

    def fast(x):
        # ratio >= 1 exactly in real arithmetic; a rounding below 1 must not give a negative loss.
        nll = jnp.maximum(jnp.log(ratio), 0.0)
        return picked + nll, nll

    def slow(x):
        lse = logsumexp(x, axis, cdt)
        return lse, lse - picked

    lse, nll = lax.cond(fast_ok, fast, slow, x)
    return lse, nll, sum_x


# ----------------------------------------------------------------------------------------------
# sparse (integer labels)

_SPARSE = "sparse_softmax_cross_entropy"


class _SparseOptions(NamedTuple):
    """The static options of the sparse kernel (hashable: part of the compiled program)."""

    axis: int
    ignore_index: int | None
    hit: float  # the smoothed target is ``flat + hit * [c == label]``
    flat: float
    const: float  # subtracted from the loss (the target's entropy, for the "others" style)
    z_loss: float
    vocab_axis_name: Any


def _owned(safe: jax.Array, offset: Any, local_k: int) -> tuple[jax.Array, jax.Array]:
    """``(owned, local)``: whether this device's class slice holds each label, and its index there.

    ``local`` is 0 where the label is not owned, so gathers stay in bounds.
    """
    local = safe - offset
    owned = (local >= 0) & (local < local_k)
    return owned, jnp.where(owned, local, jnp.zeros_like(local))


def _sparse_forward(logits, labels, class_weight, o: _SparseOptions):
    """Per-example loss plus residuals ``(lse, unweighted_loss, label_weight)``.

    ``lse`` keeps the class axis; ``label_weight`` is the class weight of each example's label
    (None without ``class_weight``), saved so that the backward needs no gather across devices.
    """
    # The logits stay in their own dtype here: every reduction upcasts inside its own fused loop,
    # so bfloat16 logits never get a float32 copy.
    cdt = compute_dtype(logits.dtype)
    axis, vaxis = o.axis, o.vocab_axis_name
    local_k = logits.shape[axis]
    offset, num_classes = vocab_slice(vaxis, local_k)
    in_range, ignored, safe = label_masks(labels, num_classes, o.ignore_index)
    smooth = bool(o.flat)
    if vaxis is None:
        picked = jnp.take_along_axis(
            private_copy(logits, cdt, site=1),
            jnp.expand_dims(safe, axis),
            axis=axis,
            mode="promise_in_bounds",
        ).astype(cdt)
        lse, nll, sum_logits = _label_logsumexp(logits, picked, axis, with_sum=smooth)
        w_label = None if class_weight is None else class_weight.astype(cdt)[safe]
    else:
        owned, local = _owned(safe, offset, local_k)
        x_pick = jnp.take_along_axis(
            private_copy(logits, cdt, site=1),
            jnp.expand_dims(local, axis),
            axis=axis,
            mode="promise_in_bounds",
        ).astype(cdt)
        zero = jnp.zeros((), cdt)
        picked = combine_sum(jnp.where(jnp.expand_dims(owned, axis), x_pick, zero), vaxis)
        m = combine_max(jnp.max(logits, axis=axis, keepdims=True).astype(cdt), vaxis)
        m = lax.stop_gradient(finite_or_zero(m))
        xc = private_copy(logits, cdt, site=2).astype(cdt)
        s = combine_sum(jnp.sum(jnp.exp(xc - m), axis=axis, keepdims=True), vaxis)
        lse = m + jnp.log(s)  # -inf for a row whose logits are all -inf
        nll = lse - picked
        sum_logits = None
        if smooth:
            sum_logits = combine_sum(jnp.sum(xc, axis=axis, keepdims=True), vaxis)
        w_label = None
        if class_weight is not None:
            w_local = jnp.where(owned, class_weight.astype(cdt)[local], zero)
            w_label = combine_sum(w_local, vaxis)
    loss = nll
    if smooth:
        assert sum_logits is not None  # computed whenever smoothing is on
        loss = loss + (1.0 - o.hit) * picked - o.flat * sum_logits - o.const
    if o.z_loss:
        loss = loss + o.z_loss * jnp.square(lse)
    loss = jnp.squeeze(loss, axis)
    unweighted = loss
    if w_label is not None:
        loss = loss * w_label
    loss = jnp.where(in_range, loss, jnp.asarray(jnp.nan, cdt))
    if ignored is not None:
        loss = jnp.where(ignored, jnp.zeros((), cdt), loss)
    return loss, (lse, unweighted, w_label)


def _sparse_dlogits(logits, labels, w_label, lse, g, o: _SparseOptions):
    """``g * dloss/dlogits`` in one fused elementwise pass over this device's logits.

    ``coef * (1 + 2 z lse) * exp(x - lse) - coef * flat`` plus the target term ``-coef * hit``
    where the class index equals the label (an ``iota == label`` select in the same loop; no
    one-hot array). Keeping the label term in the loop rather than adding it afterwards with a
    scatter of one value per row matters in a training step, where the logits are a temporary
    that dies here: XLA then writes the gradient in place over the logits, so the backward needs
    no second ``[N, V]`` buffer. (XLA:CPU does not do that when a scatter follows the loop:
    measured with the logits from a matmul, 1024 MiB of temp memory with the scatter against 512
    MiB with the select.) For bfloat16/float16 the select also subtracts the target before
    rounding: ``p - 1`` for a confident correct class is far below bfloat16's resolution at 1.
    With a sharded class axis the label is compared with the slice's global column ids, so only
    the owning device subtracts the target.
    """
    cdt = lse.dtype
    axis = o.axis
    x = private_copy(logits, cdt, site=3).astype(cdt)
    offset, num_classes = vocab_slice(o.vocab_axis_name, x.shape[axis])
    in_range, ignored, safe = label_masks(labels, num_classes, o.ignore_index)
    coef = g.astype(cdt)
    if w_label is not None:
        coef = coef * w_label
    coef = jnp.where(in_range, coef, jnp.asarray(jnp.nan, cdt))
    if ignored is not None:
        coef = jnp.where(ignored, jnp.zeros((), cdt), coef)
    coef_b = jnp.expand_dims(coef, axis)
    scale = coef_b * (1.0 + 2.0 * o.z_loss * lse) if o.z_loss else coef_b
    grad = scale * jnp.exp(x - lse)
    if o.flat:
        grad = grad - coef_b * o.flat
    if ignored is not None:
        # Exactly zero for ignored rows even when their logits are not finite.
        grad = jnp.where(jnp.expand_dims(ignored, axis), jnp.zeros((), cdt), grad)
    hit = jnp.expand_dims(-o.hit * coef, axis)
    cols = lax.broadcasted_iota(labels.dtype, x.shape, axis)
    at_label = cols == jnp.expand_dims(safe - offset, axis)
    grad = grad + jnp.where(at_label, hit, jnp.zeros((), cdt))
    return grad.astype(logits.dtype)


def _sparse_dclass_weight(labels, class_weight, unweighted, g, o: _SparseOptions):
    """``d loss / d class_weight`` for this device's slice of the class weights (no collective)."""
    local_k = class_weight.shape[0]
    offset, num_classes = vocab_slice(o.vocab_axis_name, local_k)
    in_range, ignored, safe = label_masks(labels, num_classes, o.ignore_index)
    owned, local = _owned(safe, offset, local_k)
    owned = owned & in_range
    if ignored is not None:
        owned = owned & ~ignored
    contrib = jnp.where(owned, g.astype(unweighted.dtype) * unweighted, 0.0)
    # Labels of other slices (and invalid ones) point past the end and are dropped.
    idx = jnp.where(owned, local, local_k).reshape(-1)
    dcw = vary_like(jnp.zeros((local_k,), unweighted.dtype), contrib)
    dcw = dcw.at[idx].add(contrib.reshape(-1), mode="drop")
    return dcw.astype(class_weight.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _sparse_vjp(logits, labels, class_weight, o):
    return _sparse_forward(logits, labels, class_weight, o)[0]


def _sparse_vjp_fwd(logits, labels, class_weight, o):
    loss, (lse, unweighted, w_label) = _sparse_forward(logits, labels, class_weight, o)
    keep = unweighted if class_weight is not None else None
    return loss, (logits, labels, class_weight, lse, keep, w_label)


def _sparse_vjp_bwd(o, res, g):
    logits, labels, class_weight, lse, unweighted, w_label = res
    dlogits = _sparse_dlogits(logits, labels, w_label, lse, g, o)
    dcw = None
    if class_weight is not None:
        dcw = _sparse_dclass_weight(labels, class_weight, unweighted, g, o)
    return sum_like(dlogits, logits), None, sum_like(dcw, class_weight)


_sparse_vjp.defvjp(_sparse_vjp_fwd, _sparse_vjp_bwd)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _sparse_jvp(logits, labels, class_weight, o):
    return _sparse_forward(logits, labels, class_weight, o)[0]


@_sparse_jvp.defjvp
def _sparse_jvp_rule(o, primals, tangents):
    logits, labels, class_weight = primals
    dlogits, _, dcw = tangents
    axis = o.axis
    loss, (lse, unweighted, w_label) = _sparse_forward(logits, labels, class_weight, o)

    # Under jax.checkpoint the linearised rule keeps only (logits, labels, lse) and recomputes the
    # softmax when transposed, so reverse mode through this twin is as lean as the custom_vjp.
    @jax.checkpoint
    def tangent(logits, w_label, lse, dlogits):
        ones = jnp.ones(lse.shape[:axis] + lse.shape[axis + 1 :], lse.dtype)
        coeff = _sparse_dlogits(logits, labels, w_label, lse, ones, o)
        return jnp.sum(coeff.astype(lse.dtype) * dlogits.astype(lse.dtype), axis=axis)

    out = tangent(logits, w_label, lse, dlogits)
    if class_weight is not None:
        in_range, ignored, safe = label_masks(labels, logits.shape[axis], o.ignore_index)
        extra = jnp.where(in_range, dcw.astype(lse.dtype)[safe] * unweighted, 0.0)
        if ignored is not None:
            extra = jnp.where(ignored, 0.0, extra)
        out = out + extra
    return loss, out.astype(loss.dtype)


def _check_sparse(
    name,
    logits,
    labels,
    axis,
    ignore_index,
    label_smoothing,
    label_smoothing_style,
    z_loss,
    class_weight,
    vocab_axis_name=None,
):
    logits = as_floating(name, "logits", logits)
    axis = normalize_axis(name, axis, logits.ndim)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{name}: `labels` must hold integer class indices; got dtype {labels.dtype}. "
            "Cast with `.astype(jnp.int32)` if the floats are whole numbers."
        )
    labels = index_dtype(labels)
    expected = logits.shape[:axis] + logits.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"{name}: `labels` must have the shape of `logits` without the class axis {axis}, "
            f"{expected}; got {labels.shape}."
        )
    ignore_index = static_ignore_index(name, ignore_index)
    ls = static_float(name, "label_smoothing", label_smoothing, 0.0, 1.0)
    style = static_choice(name, "label_smoothing_style", label_smoothing_style, SMOOTHING_STYLES)
    z = static_float(name, "z_loss", z_loss, 0.0, None)
    vaxis = static_axis_name(name, vocab_axis_name)
    local_k = logits.shape[axis]
    if class_weight is not None:
        class_weight = as_floating(name, "class_weight", class_weight)
        if class_weight.shape != (local_k,):
            what = "this device's classes" if vaxis is not None else "num_classes"
            raise ValueError(
                f"{name}: `class_weight` must have shape ({what},) = ({local_k},); "
                f"got {class_weight.shape}."
            )
    num_classes = global_class_count(name, vaxis, local_k)
    hit, flat, const = smoothing_terms(ls, style, num_classes)
    options = _SparseOptions(axis, ignore_index, hit, flat, const, z, vaxis)
    return logits, labels, class_weight, options


def sparse_softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    label_smoothing_style: str = "uniform",
    z_loss: float = 0.0,
    class_weight: ArrayLike | None = None,
    vocab_axis_name: str | tuple[str, ...] | None = None,
) -> jax.Array:
    """Softmax cross-entropy of ``logits`` against integer ``labels``, one value per example.

    For each example with ``lse = logsumexp(logits, axis)``, ``K`` classes and the smoothed target
    ``t`` (the one-hot label when ``label_smoothing=0``)::

        loss = w[label] * (-sum(t * log_softmax(logits)) - H(t) + z_loss * lse ** 2)

    where ``w`` is the ``class_weight`` (1 when ``None``) and ``label_smoothing_style`` picks
    ``t`` and ``H(t)``:

    * ``"uniform"`` (PyTorch, Keras, optax): ``t = (1 - ls) * one_hot + ls / K`` and ``H = 0``;
    * ``"others"`` (T5X, praxis, the flax examples): ``1 - ls`` on the label and ``ls / (K - 1)``
      on each other class, and ``H(t)`` is the target's entropy, so the loss is the KL divergence
      from ``t`` and a perfect prediction of ``t`` scores 0.

    No one-hot array is ever built.

    Args:
      logits: unnormalised log-probabilities, any float dtype, shape ``[..., K, ...]`` with the
        classes on ``axis``.
      labels: integer class indices, the shape of ``logits`` without ``axis``.
      axis: the class axis (any, no transpose is made).
      ignore_index: a label value whose examples get a loss of exactly 0 and a gradient of exactly
        0 (e.g. ``-100`` for padding tokens).
      label_smoothing: ``ls`` in ``[0, 1]``.
      label_smoothing_style: ``"uniform"`` or ``"others"``, see above.
      z_loss: ``>= 0``; adds ``z_loss * lse ** 2`` (the PaLM auxiliary loss that keeps the
        log-normaliser near 0).
      class_weight: optional weights, one per class on this device; an example's loss is
        multiplied by the weight of its label (like Keras' ``fit(class_weight=...)``).
        Differentiable. With ``vocab_axis_name`` it is sharded like the class axis.
      vocab_axis_name: inside ``jax.shard_map``, the mesh axis (or tuple of axes) the class axis
        is split over; ``logits`` is then this device's contiguous slice and ``labels`` hold
        global class ids. The loss is computed exactly, with ``[rows]``-sized collectives only,
        and comes back replicated over that axis; the backward needs no communication.

    Returns:
      The per-example loss, shape ``logits.shape`` without ``axis``; float32 for bfloat16/float16/
      float32 logits (float64 for float64).

    Raises:
      TypeError: non-float logits, non-integer labels, a traced option.
      ValueError: labels of the wrong shape, an option out of range, a bad ``axis``, a
        ``vocab_axis_name`` that the enclosing ``shard_map`` does not bind.

    Gradient:
      ``jax.custom_vjp``; the only residuals are the per-example ``lse`` (and, with
      ``class_weight``, the label's weight and the unweighted loss); the backward is one fused
      pass ``g * w * ((1 + 2 z_loss lse) softmax - t)`` returned in the logits' dtype. Forward
      mode is not supported here: use :func:`sparse_softmax_cross_entropy_jvp`.

    Notes:
      A label outside ``[0, K)`` that is not ``ignore_index`` gives ``NaN`` for that example's loss
      and gradient row, and leaves every other example untouched.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss import ops
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> print(np.asarray(ops.sparse_softmax_cross_entropy(logits, jnp.array([0, 1]))).round(4))
      [0.2761 2.9518]
      >>> loss = ops.sparse_softmax_cross_entropy(logits, jnp.array([0, -100]), ignore_index=-100)
      >>> print(np.asarray(loss).round(4))
      [0.2761 0.    ]
      >>> loss = ops.sparse_softmax_cross_entropy(logits, jnp.array([0, 7]))  # 7 is out of range
      >>> print(np.asarray(loss).round(4))
      [0.2761    nan]

      With ``"others"`` smoothing a prediction equal to the smoothed target scores 0:

      >>> target_logits = jnp.log(jnp.array([[0.8, 0.1, 0.1]]))
      >>> loss = ops.sparse_softmax_cross_entropy(
      ...     target_logits, jnp.array([0]), label_smoothing=0.2, label_smoothing_style="others")
      >>> print(f"{float(loss[0]):.5f}")
      0.00000

      Vocab-parallel: the class axis split over the ``"model"`` axis of a mesh:

      >>> import jax
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(jax.devices()[:1], ("model",))
      >>> f = jax.shard_map(
      ...     lambda z, y: ops.sparse_softmax_cross_entropy(z, y, vocab_axis_name="model"),
      ...     mesh=mesh, in_specs=(P(None, "model"), P()), out_specs=P())
      >>> print(np.asarray(f(logits, jnp.array([0, 1]))).round(4))
      [0.2761 2.9518]
    """
    logits, labels, class_weight, o = _check_sparse(
        _SPARSE,
        logits,
        labels,
        axis,
        ignore_index,
        label_smoothing,
        label_smoothing_style,
        z_loss,
        class_weight,
        vocab_axis_name,
    )
    return _sparse_vjp(logits, labels, class_weight, o)


def sparse_softmax_cross_entropy_jvp(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    label_smoothing_style: str = "uniform",
    z_loss: float = 0.0,
    class_weight: ArrayLike | None = None,
) -> jax.Array:
    """:func:`sparse_softmax_cross_entropy` with forward-mode autodiff (``jax.custom_jvp``).

    Same signature (without ``vocab_axis_name``), values and reverse-mode gradient; also works
    under ``jax.jvp``, ``jax.jacfwd``, ``jax.hessian`` and forward-over-reverse Hessian-vector
    products. The tangent rule runs under ``jax.checkpoint``, so reverse mode still keeps only
    ``lse`` as a residual.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss import ops
      >>> logits, labels = jnp.array([[1.0, 2.0, 0.5]]), jnp.array([1])
      >>> h = jax.hessian(lambda z: ops.sparse_softmax_cross_entropy_jvp(z, labels).sum())(logits)
      >>> h.shape
      (1, 3, 1, 3)
    """
    logits, labels, class_weight, o = _check_sparse(
        _SPARSE + "_jvp",
        logits,
        labels,
        axis,
        ignore_index,
        label_smoothing,
        label_smoothing_style,
        z_loss,
        class_weight,
    )
    return _sparse_jvp(logits, labels, class_weight, o)


# ----------------------------------------------------------------------------------------------
# dense (target distributions)

_DENSE = "softmax_cross_entropy"


def _dense_lse_and_ce(x: jax.Array, t: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """``(lse, sum(t * (lse - x)))`` over ``axis``, with ``0 * -inf`` counted as 0.

    The common case is two plain streaming passes, the unshifted ``sum(exp(x))`` (as in
    ``_label_logsumexp``) and the cross-entropy sum itself; a select inside either would cost
    XLA:CPU ~4x (its fast reduction path takes plain arithmetic only). Only if something is not
    finite (a logit beyond about +-80, or a zero target on a ``-inf`` masked logit, whose product
    is NaN) is the batch recomputed under a ``lax.cond`` with the max shift and the product
    masked. A positive target on a ``-inf`` logit gives an infinite loss either way.
    """
    total = jnp.sum(jnp.exp(x), axis=axis, keepdims=True)
    lse = jnp.log(total)
    ce = jnp.sum(t * (lse - x), axis=axis, keepdims=True)
    fast_ok = exp_sum_is_safe(total) & ~jnp.any(jnp.isnan(ce))

    def fast(x, t):
        return lse, ce

    def slow(x, t):
        lse = logsumexp(x, axis)
        terms = jnp.where(t != 0, t * (lse - x), jnp.zeros((), x.dtype))
        return lse, jnp.sum(terms, axis=axis, keepdims=True)

    return lax.cond(fast_ok, fast, slow, x, t)


def _dense_lse_and_ce_sharded(x, t, axis, vaxis):
    """``_dense_lse_and_ce`` for a class axis split over ``vaxis``: max shift, ``[rows]`` psums."""
    m = lax.stop_gradient(finite_or_zero(combine_max(jnp.max(x, axis=axis, keepdims=True), vaxis)))
    lse = m + jnp.log(combine_sum(jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True), vaxis))
    terms = jnp.where(t != 0, t * (lse - x), jnp.zeros((), x.dtype))
    return lse, combine_sum(jnp.sum(terms, axis=axis, keepdims=True), vaxis)


def _dense_forward(logits, targets, axis, ls, z_loss, vaxis):
    """Loss plus residuals ``(lse, target_mass)``, both keeping the class axis.

    ``target_mass`` (the backward's ``sum(smoothed targets)``) is one more pass over the targets;
    a call that does not differentiate drops it (dead code under ``jit``).
    """
    cdt = compute_dtype(logits.dtype)
    x = logits.astype(cdt)
    t = targets.astype(cdt)
    _, num_classes = vocab_slice(vaxis, x.shape[axis])
    if vaxis is None:
        lse, loss = _dense_lse_and_ce(x, t, axis)
    else:
        lse, loss = _dense_lse_and_ce_sharded(x, t, axis, vaxis)
    mass = combine_sum(jnp.sum(t, axis=axis, keepdims=True), vaxis)
    if ls:
        mean_x = combine_sum(jnp.sum(x, axis=axis, keepdims=True), vaxis) / num_classes
        loss = (1.0 - ls) * loss + ls * (lse - mean_x)
        mass = (1.0 - ls) * mass + ls
    if z_loss:
        loss = loss + z_loss * jnp.square(lse)
    return jnp.squeeze(loss, axis), (lse, mass)


def _dense_dlogits(logits, targets, lse, mass, g, axis, ls, z_loss, vaxis):
    cdt = lse.dtype
    x = logits.astype(cdt)
    t = targets.astype(cdt)
    _, num_classes = vocab_slice(vaxis, x.shape[axis])
    coef = jnp.expand_dims(g.astype(cdt), axis)
    scale = mass + 2.0 * z_loss * lse if z_loss else mass
    target = (1.0 - ls) * t + ls / num_classes if ls else t
    grad = coef * (scale * jnp.exp(x - lse) - target)
    return grad.astype(logits.dtype)


def _dense_dtargets(logits, targets, lse, g, axis, ls):
    cdt = lse.dtype
    coef = jnp.expand_dims(g.astype(cdt), axis) * (1.0 - ls)
    return (coef * (lse - logits.astype(cdt))).astype(targets.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _dense_vjp(logits, targets, axis, ls, z_loss, vaxis):
    return _dense_forward(logits, targets, axis, ls, z_loss, vaxis)[0]


def _dense_vjp_fwd(logits, targets, axis, ls, z_loss, vaxis):
    loss, (lse, mass) = _dense_forward(logits, targets, axis, ls, z_loss, vaxis)
    return loss, (logits, targets, lse, mass)


def _dense_vjp_bwd(axis, ls, z_loss, vaxis, res, g):
    logits, targets, lse, mass = res
    dlogits = _dense_dlogits(logits, targets, lse, mass, g, axis, ls, z_loss, vaxis)
    dtargets = _dense_dtargets(logits, targets, lse, g, axis, ls)
    return sum_like(dlogits, logits), sum_like(dtargets, targets)


_dense_vjp.defvjp(_dense_vjp_fwd, _dense_vjp_bwd)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _dense_jvp(logits, targets, axis, ls, z_loss):
    return _dense_forward(logits, targets, axis, ls, z_loss, None)[0]


@_dense_jvp.defjvp
def _dense_jvp_rule(axis, ls, z_loss, primals, tangents):
    logits, targets = primals
    dlogits, dtargets = tangents
    loss, (lse, mass) = _dense_forward(logits, targets, axis, ls, z_loss, None)

    @jax.checkpoint
    def tangent(logits, targets, lse, mass, dlogits, dtargets):
        ones = jnp.ones(loss.shape, lse.dtype)
        a = _dense_dlogits(logits, targets, lse, mass, ones, axis, ls, z_loss, None)
        a = a.astype(lse.dtype)
        b = (1.0 - ls) * (lse - logits.astype(lse.dtype))
        return jnp.sum(a * dlogits.astype(lse.dtype) + b * dtargets.astype(lse.dtype), axis=axis)

    return loss, tangent(logits, targets, lse, mass, dlogits, dtargets).astype(loss.dtype)


def _check_dense(name, logits, targets, axis, label_smoothing, z_loss, vocab_axis_name=None):
    logits = as_floating(name, "logits", logits)
    axis = normalize_axis(name, axis, logits.ndim)
    targets = jnp.asarray(targets)
    if targets.shape != logits.shape:
        raise ValueError(
            f"{name}: `targets` must have the shape of `logits`, {logits.shape}; "
            f"got {targets.shape}."
        )
    if not jnp.issubdtype(targets.dtype, jnp.floating):
        targets = targets.astype(compute_dtype(logits.dtype))
    ls = static_float(name, "label_smoothing", label_smoothing, 0.0, 1.0)
    z = static_float(name, "z_loss", z_loss, 0.0, None)
    vaxis = static_axis_name(name, vocab_axis_name)
    global_class_count(name, vaxis, logits.shape[axis])
    return logits, targets, axis, ls, z, vaxis


def softmax_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    vocab_axis_name: str | tuple[str, ...] | None = None,
) -> jax.Array:
    """Softmax cross-entropy of ``logits`` against a target distribution, one value per example.

    With ``t = (1 - ls) * targets + ls / K`` and ``lse = logsumexp(logits, axis)``::

        loss = -sum(t * log_softmax(logits), axis) + z_loss * lse ** 2
             = sum(t) * lse - sum(t * logits) + z_loss * lse ** 2

    Targets need not sum to 1 (the gradient is exact for any targets). A zero target facing a
    ``-inf`` logit (a masked class) contributes 0, not ``NaN``.

    Args:
      logits: unnormalised log-probabilities, any float dtype, classes on ``axis``.
      targets: same shape; one-hot or soft labels (integer one-hot is accepted and cast).
      axis: the class axis.
      label_smoothing: in ``[0, 1]``.
      z_loss: ``>= 0``; adds ``z_loss * lse ** 2``.
      vocab_axis_name: inside ``jax.shard_map``, the mesh axis (or axes) the class axis is split
        over; ``logits`` and ``targets`` are then this device's slices (``K`` above is the whole
        class count). Exact, with ``[rows]``-sized collectives; the loss comes back replicated
        over that axis and the backward needs no communication.

    Returns:
      The per-example loss, shape ``logits.shape`` without ``axis``; float32 unless the logits are
      float64.

    Raises:
      TypeError: non-float logits, a traced option.
      ValueError: ``targets`` of another shape, an option out of range, a bad ``axis``, a
        ``vocab_axis_name`` that the enclosing ``shard_map`` does not bind.

    Gradient:
      ``jax.custom_vjp``; residual ``lse`` (and the per-example target mass); backward
      ``g * ((sum(t) + 2 z_loss lse) softmax - t)`` in the logits' dtype, and
      ``-g (1 - ls) log_softmax`` for the targets (dead code under ``jit`` unless used). Forward
      mode: :func:`softmax_cross_entropy_jvp`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss import ops
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> targets = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> print(np.asarray(ops.softmax_cross_entropy(logits, targets)).round(4))
      [0.2761 2.9518]
    """
    logits, targets, axis, ls, z, vaxis = _check_dense(
        _DENSE, logits, targets, axis, label_smoothing, z_loss, vocab_axis_name
    )
    return _dense_vjp(logits, targets, axis, ls, z, vaxis)


def softmax_cross_entropy_jvp(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
) -> jax.Array:
    """:func:`softmax_cross_entropy` with forward-mode autodiff (``jax.custom_jvp``).

    Same signature (without ``vocab_axis_name``), values and reverse-mode gradient; also works
    under ``jax.jvp``, ``jax.jacfwd`` and ``jax.hessian``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss import ops
      >>> t = jnp.array([[0.2, 0.8]])
      >>> _, dy = jax.jvp(lambda z: ops.softmax_cross_entropy_jvp(z, t), (jnp.zeros((1, 2)),),
      ...                 (jnp.array([[1.0, 0.0]]),))
      >>> dy
      Array([0.3], dtype=float32)
    """
    logits, targets, axis, ls, z, _ = _check_dense(
        _DENSE + "_jvp", logits, targets, axis, label_smoothing, z_loss
    )
    return _dense_jvp(logits, targets, axis, ls, z)


# ----------------------------------------------------------------------------------------------
# sigmoid (binary, elementwise)

_SIGMOID = "sigmoid_binary_cross_entropy"


def _sigmoid_forward(logits, labels, pos_weight, ls):
    cdt = compute_dtype(logits.dtype)
    x = logits.astype(cdt)
    y = labels.astype(cdt)
    if ls:
        y = y * (1.0 - ls) + 0.5 * ls
    # -log(sigmoid(x)) = softplus(-x);  -log(1 - sigmoid(x)) = softplus(x)
    if pos_weight is None:
        return jax.nn.softplus(x) - y * x
    pw = pos_weight.astype(cdt)
    return pw * y * jax.nn.softplus(-x) + (1.0 - y) * jax.nn.softplus(x)


def _unbroadcast(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sum ``x`` down to ``shape`` (the inverse of numpy broadcasting)."""
    extra = x.ndim - len(shape)
    x = jnp.sum(x, axis=tuple(range(extra))) if extra else x
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and x.shape[i] != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _sigmoid_vjp(logits, labels, pos_weight, ls):
    return _sigmoid_forward(logits, labels, pos_weight, ls)


def _sigmoid_vjp_fwd(logits, labels, pos_weight, ls):
    return _sigmoid_forward(logits, labels, pos_weight, ls), (logits, labels, pos_weight)


def _sigmoid_vjp_bwd(ls, res, g):
    logits, labels, pos_weight = res
    cdt = compute_dtype(logits.dtype)
    x = logits.astype(cdt)
    y = labels.astype(cdt)
    if ls:
        y = y * (1.0 - ls) + 0.5 * ls
    g = g.astype(cdt)
    sig = jax.nn.sigmoid(x)
    if pos_weight is None:
        dx = g * (sig - y)
        dy = g * (-x)
        dpw = None
    else:
        pw = pos_weight.astype(cdt)
        # d/dx [pw y sp(-x) + (1 - y) sp(x)] = -pw y (1 - sig) + (1 - y) sig
        dx = g * ((1.0 - y) * sig - pw * y * (1.0 - sig))
        dy = g * (pw * jax.nn.softplus(-x) - jax.nn.softplus(x))
        dpw = _unbroadcast(g * y * jax.nn.softplus(-x), pos_weight.shape).astype(pos_weight.dtype)
    dy = (dy * (1.0 - ls)).astype(labels.dtype)
    return dx.astype(logits.dtype), dy, dpw


_sigmoid_vjp.defvjp(_sigmoid_vjp_fwd, _sigmoid_vjp_bwd)


def _check_sigmoid(name, logits, labels, pos_weight, label_smoothing):
    logits = as_floating(name, "logits", logits)
    labels = jnp.asarray(labels)
    if labels.shape != logits.shape:
        raise ValueError(
            f"{name}: `labels` must have the shape of `logits`, {logits.shape}; got {labels.shape}."
        )
    if not jnp.issubdtype(labels.dtype, jnp.floating):
        labels = labels.astype(compute_dtype(logits.dtype))
    if pos_weight is not None:
        pos_weight = jnp.asarray(pos_weight)
        if not jnp.issubdtype(pos_weight.dtype, jnp.floating):
            pos_weight = pos_weight.astype(compute_dtype(logits.dtype))
        try:
            ok = jnp.broadcast_shapes(pos_weight.shape, logits.shape) == logits.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name}: `pos_weight` of shape {pos_weight.shape} must broadcast to `logits` "
                f"of shape {logits.shape} (a scalar or one weight per class)."
            )
    ls = static_float(name, "label_smoothing", label_smoothing, 0.0, 1.0)
    return logits, labels, pos_weight, ls


def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
) -> jax.Array:
    """Elementwise sigmoid cross-entropy of ``logits`` against binary (or soft) ``labels``.

    With ``y = labels * (1 - ls) + 0.5 * ls`` (Keras' binary smoothing, towards 0.5)::

        loss = pos_weight * y * softplus(-logits) + (1 - y) * softplus(logits)

    i.e. ``-pos_weight * y * log(sigmoid(x)) - (1 - y) * log(1 - sigmoid(x))``, computed without
    forming the sigmoid, so logits of +-1e4 give exact, finite values and gradients.

    Args:
      logits: any float dtype, any shape.
      labels: same shape, values in ``[0, 1]`` (integers and booleans are cast).
      pos_weight: optional weight of the positive term, broadcastable to ``logits`` (a scalar, or
        one per class as in ``torch.nn.BCEWithLogitsLoss``). Differentiable.
      label_smoothing: in ``[0, 1]``.

    Returns:
      The elementwise loss, ``logits.shape``; float32 unless the logits are float64.

    Raises:
      TypeError: non-float logits, a traced ``label_smoothing``.
      ValueError: shapes that differ, ``pos_weight`` that does not broadcast, an option out of
        range.

    Gradient:
      ``jax.custom_vjp`` returning ``g * (sigmoid(x) (pw y + 1 - y) - pw y)`` in the logits' dtype.
      Forward mode: :func:`sigmoid_binary_cross_entropy_jvp`.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss import ops
      >>> loss = ops.sigmoid_binary_cross_entropy(jnp.array([-18.6, 0.51, 2.94, -12.8]),
      ...                                         jnp.array([0.0, 1.0, 0.0, 0.0]))
      >>> print(np.asarray(loss).round(4))
      [0.     0.4703 2.9915 0.    ]
    """
    logits, labels, pos_weight, ls = _check_sigmoid(
        _SIGMOID, logits, labels, pos_weight, label_smoothing
    )
    return _sigmoid_vjp(logits, labels, pos_weight, ls)


def sigmoid_binary_cross_entropy_jvp(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
) -> jax.Array:
    """:func:`sigmoid_binary_cross_entropy` as plain differentiable code (forward mode works).

    The loss is elementwise, so plain autodiff already fuses into one pass; this twin exists so that
    every kernel has a forward-mode spelling.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss import ops
      >>> jax.hessian(lambda x: ops.sigmoid_binary_cross_entropy_jvp(x, jnp.ones(1)).sum())(
      ...     jnp.zeros(1))
      Array([[0.25]], dtype=float32)
    """
    logits, labels, pos_weight, ls = _check_sigmoid(
        _SIGMOID + "_jvp", logits, labels, pos_weight, label_smoothing
    )
    return _sigmoid_forward(logits, labels, pos_weight, ls)
