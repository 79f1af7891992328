"""Pieces shared by the kernels in :mod:`jaxloss.ops`: dtypes, checks, label masks, logsumexp.

A leaf module (jax and numpy only). Nothing here is public API; the kernels re-export what users
need.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

# ----------------------------------------------------------------------------------------------
# dtypes


def compute_dtype(dtype: Any) -> jnp.dtype:
    """The dtype the kernels compute in for inputs of ``dtype``: float64 stays, else float32."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def index_dtype(labels: jax.Array) -> jax.Array:
    """``labels`` in one index dtype for gathers and ``iota == label`` selects.

    int8/int16 could not count to the number of classes; 64-bit labels stay 64-bit.
    """
    return labels.astype(jnp.int64 if labels.dtype.itemsize == 8 else jnp.int32)


def private_copy(x: jax.Array, cdt: Any, site: int) -> jax.Array:
    """``x`` behind an optimization barrier when it will be upcast to ``cdt``.

    XLA would merge the ``convert`` of two consumers (a reduction and the label gather, or the
    forward's reduction and the backward's loop) into one and then materialise it: a float32 copy
    of the bfloat16 logits. Behind the barrier each consumer converts inside its own fused loop. A
    no-op for logits already in ``cdt``. ``site`` is a constant per call site: identical barriers
    would be merged (CSE) into one again, and a constant (not a counter) keeps the lowered program
    text the same from one trace to the next.
    """
    if x.dtype == cdt:
        return x
    return lax.optimization_barrier((x, np.int32(site)))[0]


# ----------------------------------------------------------------------------------------------
# static option checks (trace time; every message names the kernel, the argument, expected, got)


def as_floating(name: str, arg: str, x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: `{arg}` must be a floating array; got dtype {x.dtype}.")
    return x


def normalize_axis(name: str, axis: Any, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: `axis` must be an int; got {axis!r}.")
    if ndim == 0:
        raise ValueError(f"{name}: `logits` must have rank >= 1 (a class axis); got a scalar.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: `axis`={axis} is out of range for `logits` of rank {ndim}.")
    return int(axis) % ndim


def static_float(name: str, arg: str, value: Any, lo: float, hi: float | None) -> float:
    """A Python float option, checked against ``[lo, hi]`` (``hi=None``: no upper bound)."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name}: `{arg}` must be a Python float (it is a static option); got a traced value."
        )
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: `{arg}` must be a float; got {value!r}.")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: `{arg}` must be a float; got {value!r}.") from None
    if not (value >= lo and (hi is None or value <= hi)) or math.isnan(value):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: `{arg}` must be {rng}; got {value!r}.")
    return value


def static_ignore_index(name: str, ignore_index: Any) -> int | None:
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (jax.core.Tracer, bool, np.bool_)) or not isinstance(
        ignore_index, (int, np.integer)
    ):
        raise TypeError(
            f"{name}: `ignore_index` must be None or a Python int; got {ignore_index!r}."
        )
    return int(ignore_index)


def static_choice(name: str, arg: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        expected = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: `{arg}` must be {expected}; got {value!r}.")
    return value


def static_axis_name(name: str, axis_name: Any) -> Any:
    """``None``, a mesh axis name, or a tuple of them (hashable: it is part of the program)."""
    if axis_name is None or isinstance(axis_name, str):
        return axis_name
    if isinstance(axis_name, (tuple, list)) and all(isinstance(a, str) for a in axis_name):
        return tuple(axis_name)
    raise TypeError(
        f"{name}: `vocab_axis_name` must be None, a mesh axis name or a tuple of names; "
        f"got {axis_name!r}."
    )


# ----------------------------------------------------------------------------------------------
# labels and smoothing

SMOOTHING_STYLES = ("uniform", "others")


def label_masks(labels: jax.Array, num_classes: int, ignore_index: int | None):
    """``(in_range, ignored, safe_labels)``: ``ignored`` is None without ``ignore_index``.

    ``num_classes`` is the global class count (the whole vocabulary, also when each device holds
    a slice of it); ``safe_labels`` replaces an out-of-range label by 0 so gathers stay in bounds.
    """
    in_range = (labels >= 0) & (labels < num_classes)
    ignored = None if ignore_index is None else labels == ignore_index
    safe = jnp.where(in_range, labels, jnp.zeros_like(labels))
    return in_range, ignored, safe


def smoothing_terms(ls: float, style: str, num_classes: int) -> tuple[float, float, float]:
    """``(hit, flat, const)`` of a smoothed target: ``t_k = flat + hit * [k == label]``.

    The loss is then ``lse - hit * z[label] - flat * sum(z) - const`` (for any ``style``), and
    ``dloss/dz = p - flat - hit * [k == label]``.

    * ``"uniform"`` (PyTorch, Keras, optax): ``t = (1 - ls) * onehot + ls / K``; ``const = 0``.
    * ``"others"`` (T5X, praxis, the flax examples): the label keeps ``1 - ls`` and the other
      ``K - 1`` classes share ``ls``; ``const`` is the target's entropy, so the loss is the KL
      divergence from the target and its minimum is 0.
    """
    if not ls:
        return 1.0, 0.0, 0.0
    if style == "uniform":
        return 1.0 - ls, ls / num_classes, 0.0
    if num_classes == 1:  # no other class to give mass to: the target stays one-hot
        return 1.0, 0.0, 0.0
    low = ls / (num_classes - 1)
    conf = 1.0 - ls
    entropy = -(conf * math.log(conf) if conf > 0 else 0.0) - ls * math.log(low)
    return conf - low, low, entropy


# ----------------------------------------------------------------------------------------------
# logsumexp


def logsumexp(x: jax.Array, axis: int, dtype: Any = None) -> jax.Array:
    """``log(sum(exp(x), axis, keepdims=True))``, computed stably; all-``-inf`` rows give ``-inf``.

    The result is in ``dtype`` (default ``x.dtype``); a low-precision ``x`` is upcast inside the
    fused loops only (the row max is exact in any dtype). The shift is a constant for autodiff.
    """
    dtype = x.dtype if dtype is None else jnp.dtype(dtype)
    m = jnp.max(x, axis=axis, keepdims=True).astype(dtype)
    m = lax.stop_gradient(finite_or_zero(m))
    xs = private_copy(x, dtype, site=101).astype(dtype)
    return m + jnp.log(jnp.sum(jnp.exp(xs - m), axis=axis, keepdims=True))


def finite_or_zero(m: jax.Array) -> jax.Array:
    """The logsumexp shift for a max ``m``: ``m`` itself where finite, else 0."""
    return jnp.where(jnp.isfinite(m), m, jnp.zeros((), m.dtype))


def online_lse_step(
    m: jax.Array, s: jax.Array, block_max: jax.Array, block_exp_sum: Any
) -> tuple[jax.Array, jax.Array]:
    """Fold one block into a running ``(max, sum of exp(x - shift(max)))`` pair.

    ``block_exp_sum(shift)`` returns the block's ``sum(exp(x - shift))`` per row. A row whose
    values so far were all ``-inf`` has ``s = 0``: it is never rescaled by ``exp(-inf - ...)`` or
    ``exp(+big)``, which would give NaN. The max is a shift, not part of the function, so it is
    kept out of autodiff.
    """
    m_new = lax.stop_gradient(jnp.maximum(m, block_max))
    shift = finite_or_zero(m_new)
    decay = jnp.where(jnp.isneginf(m), jnp.zeros((), s.dtype), jnp.exp(m - shift))
    return m_new, s * decay + block_exp_sum(shift)


def exp_sum_is_safe(total: jax.Array) -> jax.Array:
    """Whether an unshifted ``sum(exp(x))`` neither overflowed nor underflowed, for every row.

    Far enough above float32's smallest normal that terms flushed to zero cannot matter.
    """
    tiny = jnp.asarray(np.finfo(np.float32).tiny, total.dtype) * 2.0**40
    return jnp.all(jnp.isfinite(total) & (total > tiny))


# ----------------------------------------------------------------------------------------------
# loops

# Steps per loop iteration of the time recursions (CTC's alpha and occupancy scans, RNN-T's
# diagonal scans), by backend. XLA:GPU pays kernel launches and a host round trip for the loop
# condition on every iteration; unrolled, a run of steps fuses into fewer, larger kernels.
# Value and gradient on an H200 (jax 0.11.2), interleaved with optax in one process per setting:
#
#   unroll                           1         8         16        32        64
#   CTC B64 T150 C28 L40 (vs optax)  1.36x     2.14x     2.23x     2.34x     2.32x
#   CTC B8 T1000 C512 L150           1.52x     2.51x     2.56x     2.55x     2.72x
#   RNN-T B8 T200 U50 V256           3.75 ms   4.00 ms   1.21 ms   1.18 ms   -
#   RNN-T B4 T500 U100 V1024         8.78 ms   9.62 ms   3.05 ms   3.67 ms   -
#   CTC compile (s, small / large)   0.5/0.6   1.9/1.2   5.6/6.8   6.6/5.3   15/20
#
# 16 is where the gain levels off. On XLA:CPU unrolling is no faster (2 and 4 measured against 1)
# and compiles for longer: 1 there, and on backends not measured. The choice follows
# jax.default_backend() at trace time: a program placed on the CPU of a GPU machine (jax.jit with
# a CPU device) still unrolls, which costs compile time there, not correctness.
SCAN_UNROLL: dict[str, int] = {"gpu": 16}


def scan_unroll() -> int:
    """``unroll`` for a time recursion's ``lax.scan`` on the default backend (see SCAN_UNROLL)."""
    return SCAN_UNROLL.get(jax.default_backend(), 1)


# ----------------------------------------------------------------------------------------------
# float32 exp2 without XLA's exp2 (the time recursions on XLA:CPU)

# 2**f on [0, 1]: a least-squares Chebyshev fit in float64, converted to monomial coefficients.
EXP2_FRAC = (
    1.0,
    0.693146824836731,
    0.24023109674453735,
    0.055478911846876144,
    0.009686187840998173,
    0.001238240976817906,
    0.00021871253557037562,
)


def horner(coefs: tuple[float, ...], x: jax.Array) -> jax.Array:
    """``sum(coefs[k] * x**k)`` by Horner's rule, in ``x``'s dtype."""
    r = jnp.asarray(coefs[-1], x.dtype)
    for c in coefs[-2::-1]:
        r = r * x + jnp.asarray(c, x.dtype)
    return r


def exp2_neg(x: jax.Array) -> jax.Array:
    """``2**x`` for float32 ``x <= 0``: :data:`EXP2_FRAC` at the fraction of ``x``, scaled by
    ``2**floor(x)`` through the exponent bits; 0 below -127, NaN stays NaN. Within 8.1e-8
    relative of the float64 value for ``x >= -125`` (XLA's ``exp2``: 4e-6) and about half its
    cost on XLA:CPU. Arguments up to 127 work too (a rounding excess above 0 is harmless)."""
    x = jnp.maximum(x, -127.0)
    n = jnp.floor(x)
    scale = lax.bitcast_convert_type((n.astype(jnp.int32) + 127) << 23, jnp.float32)
    return horner(EXP2_FRAC, x - n) * scale


def use_polynomials(dtype: Any) -> bool:
    """Whether a kernel takes the float32 polynomials (:func:`exp2_neg`) for XLA's transcendentals:
    on XLA:CPU in float32 only (a GPU's ``exp2`` and ``log2`` are hardware instructions; float64
    keeps XLA's). Read from ``jax.default_backend()`` at trace time, as :func:`scan_unroll`."""
    return jnp.dtype(dtype) == jnp.float32 and jax.default_backend() == "cpu"
