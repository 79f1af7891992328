"""Distillation divergences between a student's and a teacher's distributions over a vocabulary.

Two kernels, student first, per-row output, no reduction:

* :func:`distillation_divergence` -- student and teacher logits ``[..., V]``;
* :func:`topk_distillation_divergence` -- student logits ``[..., V]`` against a teacher given only
  by its ``k`` largest classes, ``(indices, values)`` of shape ``[..., k]``.

Both compute, with ``P`` the teacher's and ``Q`` the student's softmax at ``temperature`` and
``M = beta * P + (1 - beta) * Q``, the generalized Jensen-Shannon divergence of Agarwal et al.
(GKD, 2024)::

    JSD_beta(P, Q) = beta * KL(P || M) + (1 - beta) * KL(Q || M)        0 < beta < 1
    beta = 0:  KL(P || Q)   forward KL, "teacher || student" (classic distillation, mode covering)
    beta = 1:  KL(Q || P)   reverse KL, "student || teacher" (mode seeking)

The endpoints are the limits of ``JSD_beta / beta`` (beta -> 0) and ``JSD_beta / (1 - beta)``
(beta -> 1): ``JSD_beta`` itself tends to 0 there. This is the convention of GKD and of TRL's
``generalized_jsd_loss``, whose values these kernels reproduce. Log-probabilities are logits whose
logsumexp is 0, so either may be passed; the result is the same.

Zero probabilities
------------------
Every ``0 * log 0`` term is 0, and a class where a distribution is 0 contributes no NaN to the value
or to the gradient: ``-inf`` logits (a masked vocabulary, a top-p-filtered teacher) and exact zeros
are safe. A divergence that is really infinite (forward KL where the teacher has mass and the
student has a ``-inf`` logit; reverse KL the other way round) comes out astronomically large
(``p * 1.7e38`` per such class in float32, possibly ``+inf``) from :func:`distillation_divergence`
and ``+inf`` from the other kernels; the student's gradient of the forward KL stays finite
(``softmax(s) - softmax(t)``). For ``0 < beta < 1`` ``M`` is positive
wherever ``P`` or ``Q`` is, so the divergence is always finite.

Memory (``jax.custom_vjp``)
---------------------------
:func:`distillation_divergence` saves only per-row scalars (the two logsumexps and the
divergence) and reads each input once in its backward. Streaming (the default on accelerators,
``vocab_chunk`` on CPU), its forward reads each input once at the KL endpoints and twice for
``0 < beta < 1``.

*Forward.* The vocabulary is streamed in chunks of ``vocab_chunk`` classes: each step reads one
``[rows, chunk]`` slice of each input and folds its row maxima and exponential sums into running
ones, rescaling them when a maximum grows (an online softmax). At the endpoints the divergence
itself accumulates in the same step, relative to the running shifts ``m_t, m_s`` of the tempered
logits ``t, s``::

    KL(P || Q) = sum(e^(t - m_t) ((t - m_t) - (s - m_s))) / Z_t - log Z_t + log Z_s

(``Z`` the shifted exponential sums; reverse KL the same with the roles swapped). A step's
passes (the chunk's maxima, sums and exponentials) run on the slice while it is in cache, so the
``[rows, V]`` inputs are read from memory once. The generalized JSD's ``log M`` needs both
normalisers inside a log, so it cannot be accumulated before they are known: its forward is the
streaming logsumexps, then one fused reduction of the whole divergence (two reads of each
input). A chunk of at least ``V`` classes gives three whole-row reductions instead (the row
maxima, the exponential sums, the divergence: three reads of each input), which keep no
temporary at all.

The compiled program says so: ``python -m benchmarks.bench_distillation --hlo`` lists every
instruction of XLA's entry computation that reads an ``[N, V]`` input. On XLA:CPU (jax 0.10),
streaming, the forward has one reader at the KL endpoints (the loop, each step of which copies
its chunk once) and two for the JSD (the loop and the divergence's reduction);
``value_and_grad`` adds one (the backward's fused pass). Whole rows give five readers in the
forward (two maxima, two exponential sums, the divergence).

The default follows the measurements. XLA:GPU reads the slices inside the reductions (no
temporary) and pays for every step: the vocabulary goes in four steps (chunks of at least 2048
classes). On an H100 (``value_and_grad``, N=4096, V=32768, float32) that ran at 1.17x
(forward KL), 1.08x (reverse) and 0.96x (JSD) the speed of whole rows; chunks of 128 classes ran
2.3 to 2.7 times slower. XLA:CPU copies the slices (a few ``[rows, chunk]`` temporaries, never a
``[rows, V]`` one) and its reductions are bound by the exponentials, not by memory: on the
2-core development machine, cache-sized chunks (about 2 MiB of each input's rows) ran at 0.72x
(forward KL), 0.82x (reverse) and 0.78x (JSD) the speed of whole rows, its default therefore.

*Backward.* One fused elementwise pass per input recomputes both softmaxes from the logits and
the saved scalars (for ``0 < beta < 1`` after a reduction of ``KL(Q || M)``, which XLA:CPU fuses
with it row by row, so the inputs are still read once)::

    d/ds = (1 - beta) * q * (log q - log m - KL(Q || M))        (forward KL: q - p)
    d/dt =      beta  * p * (log p - log m - KL(P || M))        (reverse KL: p - q)

times ``1 / temperature`` (and ``temperature ** 2`` with ``scale_by_temperature_squared``). No
``[rows, V]`` array is kept between the passes or built inside them (the compiled step's temp
memory is a few per-row vectors and chunks; ``benchmarks/bench_distillation.py`` measures it
against the plain formula, whose autodiff keeps the softmaxes and log-softmaxes). The reductions
contain no select: XLA:CPU would materialise a select's operands, so ``0 * log 0`` is kept at 0 by
flooring ``-inf`` log-probabilities at half the dtype's most negative value instead. The
teacher's gradient is computed only when something asks for it (a frozen teacher costs nothing:
XLA drops the unused output).

:func:`distillation_divergence_autodiff` is the same function written for autodiff: it supports
every transformation (``jax.jvp``, ``jax.hessian``) at the memory cost above.
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

from jaxloss.ops._common import compute_dtype, finite_or_zero, static_choice

__all__ = [
    "distillation_divergence",
    "distillation_divergence_autodiff",
    "topk_distillation_divergence",
]

TAILS = ("renormalize", "residual")


# ----------------------------------------------------------------------------------------------
# static checks


def _static_option(name: str, arg: str, value: Any, ok: Any, expected: str) -> float:
    if isinstance(value, (bool, np.bool_, jax.core.Tracer)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: `{arg}` must be {expected}; got {value!r}.")
    value = float(value)
    if math.isnan(value) or not ok(value):
        raise ValueError(f"{name}: `{arg}` must be {expected}; got {value!r}.")
    return value


def _options(name: str, beta: Any, temperature: Any, scale: Any) -> tuple[float, float, float]:
    """``(beta, 1 / temperature, loss scale)`` as Python floats, or a clear error."""
    beta = _static_option(name, "beta", beta, lambda b: 0.0 <= b <= 1.0, "a float in [0, 1]")
    temperature = _static_option(
        name, "temperature", temperature, lambda t: 0.0 < t < math.inf, "a finite float > 0"
    )
    if not isinstance(scale, (bool, np.bool_)):
        raise TypeError(
            f"{name}: `scale_by_temperature_squared` must be True or False; got {scale!r}."
        )
    return beta, 1.0 / temperature, temperature**2 if scale else 1.0


def _floating(name: str, arg: str, x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: `{arg}` must be a floating array; got dtype {x.dtype}.")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(
            f"{name}: `{arg}` must have shape [..., classes] with at least one class; got shape "
            f"{tuple(x.shape)}."
        )
    return x


def _where(name: str, where: ArrayLike | None, shape: tuple[int, ...]) -> jax.Array:
    """The row mask, boolean, of the rows' shape (``None``: every row counts)."""
    if where is None:
        return jnp.ones(shape, bool)
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"{name}: `where` must be a boolean array; got dtype {where.dtype}.")
    try:
        return jnp.broadcast_to(where, shape)
    except ValueError:
        raise ValueError(
            f"{name}: `where` must broadcast to the rows' shape {shape}; got shape "
            f"{tuple(where.shape)}."
        ) from None


# ----------------------------------------------------------------------------------------------
# the dense kernel


def _lse(x: jax.Array) -> jax.Array:
    """Per-row logsumexp of a tempered, compute-dtype ``x``; all ``-inf`` rows give ``-inf``."""
    m = finite_or_zero(jnp.max(x, axis=-1, keepdims=True))
    return m[..., 0] + jnp.log(jnp.sum(jnp.exp(x - m), axis=-1))


def _log_softmaxes(s, t, lse_s, lse_t, inv_t, cdt):
    ls = s.astype(cdt) * inv_t - lse_s[..., None]
    lt = t.astype(cdt) * inv_t - lse_t[..., None]
    return ls, lt


_FLOOR = {name: -float(np.finfo(name).max) / 2 for name in ("float32", "float64")}


def _floor(x: jax.Array) -> jax.Array:
    """``x`` with ``-inf`` raised to a finite floor, so that ``0 * (x - y)`` stays 0.

    The divergences' reductions use no select: XLA:CPU fuses a reduction with its elementwise
    producer only when the producer has none, and a select would materialise a ``[rows, V]`` array.
    Half the dtype's largest value keeps every difference of two floored log-probabilities finite.
    """
    return jnp.maximum(x, _FLOOR[x.dtype.name])


def _mixture(ls: jax.Array, lt: jax.Array, beta: float) -> jax.Array:
    """``log(beta * p + (1 - beta) * q)``, floored: finite everywhere.

    Written with ``exp`` and ``log`` only (no ``log1p``/``abs``), which XLA:CPU fuses into the
    reduction. Where both probabilities underflow the floor takes over; a term ``p * (lp - lm)``
    then has ``p`` below float32's smallest normal, so it is at most ``1e-38 * 1.7e38``, never NaN.
    """
    return _floor(jnp.log(beta * jnp.exp(lt) + (1.0 - beta) * jnp.exp(ls)))


def _plogp_ratio(lp: jax.Array, lx: jax.Array) -> jax.Array:
    """Per-row ``sum(p * (log p - lx))`` with ``0 * log 0 = 0`` (forward only)."""
    return jnp.sum(jnp.exp(lp) * (_floor(lp) - _floor(lx)), axis=-1)


# XLA:CPU copies each step's slices out of the inputs: a chunk asked for there holds about this
# many bytes of one input's rows, so that a step's few chunk-sized arrays stay in cache, and at
# least this many classes, so that each row's slice is a long contiguous read. By default XLA:CPU
# reads whole rows: its reductions are bound by the exponentials, not by memory, and streaming
# measured slower there.
_CHUNK_BYTES = 1 << 21
_MIN_CHUNK = 128
# XLA:GPU reads the slices inside the reductions (no copies) and pays per step: a few large steps.
_ACCELERATOR_STEPS = 4
_ACCELERATOR_MIN_CHUNK = 2048


def _cpu_chunk(rows: int, classes: int) -> int:
    """A cache-sized streaming chunk for XLA:CPU: about 2 MiB of float32 rows, >= 128 classes."""
    chunk = _CHUNK_BYTES // (4 * max(rows, 1)) // _MIN_CHUNK * _MIN_CHUNK
    return min(max(chunk, _MIN_CHUNK), classes)


def _vocab_chunk(rows: int, classes: int, chunk: int | None, backend: str) -> int:
    """The streaming chunk: ``chunk``, else the backend's default; at most ``V``."""
    if chunk is None and backend == "cpu":
        chunk = classes
    elif chunk is None:
        chunk = -(-classes // _ACCELERATOR_STEPS)
        chunk = max(-(-chunk // _MIN_CHUNK) * _MIN_CHUNK, _ACCELERATOR_MIN_CHUNK)
    return min(chunk, classes)


def _streamed(s, t, beta, inv_t, chunk, cdt):
    """``(lse_s, lse_t, kl)`` of ``[rows, V]`` logits in one traversal of the vocabulary.

    Each step reads one ``[rows, chunk]`` slice of each input, folds its row maxima and
    exponential sums into running ones (rescaled when a maximum grows, as in an online softmax)
    and, for a KL endpoint, the running ``sum(e^(x - m_x) ((x - m_x) - (y - m_y)))`` of the
    distribution ``x`` the expectation is over. Every pass of a step runs on the slice while it
    is in cache, so each input is read from memory once. ``kl`` is ``KL(P || Q)`` for
    ``beta = 0``, ``KL(Q || P)`` for ``beta = 1`` and unused otherwise.
    """
    rows, classes = s.shape
    forward = beta != 1.0

    def step(state, sc, tc):
        ms, zs, mt, zt, a = state
        sc, tc = sc.astype(cdt) * inv_t, tc.astype(cdt) * inv_t
        ms_new = jnp.maximum(ms, jnp.max(sc, axis=-1))
        mt_new = jnp.maximum(mt, jnp.max(tc, axis=-1))
        fs, ft = finite_or_zero(ms), finite_or_zero(mt)
        fs_new, ft_new = finite_or_zero(ms_new), finite_or_zero(mt_new)
        ds = sc - fs_new[:, None]
        dt = tc - ft_new[:, None]
        es, et = jnp.exp(ds), jnp.exp(dt)
        decay_s = jnp.where(jnp.isneginf(ms), 0.0, jnp.exp(fs - fs_new))
        decay_t = jnp.where(jnp.isneginf(mt), 0.0, jnp.exp(ft - ft_new))
        zs_new = zs * decay_s + jnp.sum(es, axis=-1)
        zt_new = zt * decay_t + jnp.sum(et, axis=-1)
        if beta in (0.0, 1.0):
            # The running sum is relative to the current shifts: moving them moves every term
            # already summed by the same amount (a row of nothing yet has z = a = 0).
            moved = (fs_new - fs) - (ft_new - ft)
            if forward:
                a = decay_t * (a + zt * moved) + jnp.sum(et * (_floor(dt) - _floor(ds)), axis=-1)
            else:
                a = decay_s * (a - zs * moved) + jnp.sum(es * (_floor(ds) - _floor(dt)), axis=-1)
        return ms_new, zs_new, mt_new, zt_new, a

    ninf, zero = jnp.full((rows,), -jnp.inf, cdt), jnp.zeros((rows,), cdt)
    state = (ninf, zero, ninf, zero, zero)
    full = classes // chunk

    def body(i, state):
        start = i * chunk
        return step(
            state,
            lax.dynamic_slice_in_dim(s, start, chunk, axis=1),
            lax.dynamic_slice_in_dim(t, start, chunk, axis=1),
        )

    state = lax.fori_loop(0, full, body, state)
    if classes % chunk:
        state = step(state, s[:, full * chunk :], t[:, full * chunk :])
    ms, zs, mt, zt, a = state
    log_zs, log_zt = jnp.log(zs), jnp.log(zt)
    lse_s, lse_t = finite_or_zero(ms) + log_zs, finite_or_zero(mt) + log_zt
    kl = a / zt - log_zt + log_zs if forward else a / zs - log_zs + log_zt
    return lse_s, lse_t, kl


def _dense_forward(s, t, mask, beta, inv_t, scale, chunk):
    cdt = compute_dtype(jnp.promote_types(s.dtype, t.dtype))
    zero = jnp.zeros(s.shape[:-1], cdt)
    classes = s.shape[-1]
    if chunk < classes:
        # One traversal for the logsumexps (and the whole divergence at the KL endpoints).
        lse_s, lse_t, kl = _streamed(
            s.reshape(-1, classes), t.reshape(-1, classes), beta, inv_t, chunk, cdt
        )
        lse_s, lse_t, kl = (x.reshape(s.shape[:-1]) for x in (lse_s, lse_t, kl))
    else:
        lse_s = _lse(s.astype(cdt) * inv_t)
        lse_t = _lse(t.astype(cdt) * inv_t)
        kl = None
    ls, lt = _log_softmaxes(s, t, lse_s, lse_t, inv_t, cdt)
    if beta == 0.0:
        kl_p = _plogp_ratio(lt, ls) if kl is None else kl
        kl_q, value = zero, kl_p
    elif beta == 1.0:
        if kl is None:
            # sum(q * (s - t)) - lse_s + lse_t, on the tempered logits rather than the
            # log-softmaxes: written as sum(q * (ls - lt)), the sum's elementwise producer would
            # be a common subexpression of the backward's, which XLA then keeps as a [rows, V]
            # array.
            st = _floor(s.astype(cdt) * inv_t) - _floor(t.astype(cdt) * inv_t)
            kl = jnp.sum(jnp.exp(ls) * st, axis=-1) - lse_s + lse_t
        kl_p, kl_q, value = zero, kl, kl
    else:
        # The mixture's log needs both normalisers: a second traversal, after the first.
        # One plain reduction of the whole divergence: two would share the mixture (and the row
        # broadcasts), which XLA:CPU then materialises as [rows, V] arrays, and one two-output
        # reduction leaves its fast reduction path (about 2x slower). The backward, which needs
        # KL(Q || M) on its own, takes it in a reduction of its own.
        lm = _mixture(ls, lt, beta)
        terms = beta * jnp.exp(lt) * (_floor(lt) - lm)
        terms = terms + (1.0 - beta) * jnp.exp(ls) * (_floor(ls) - lm)
        value = jnp.sum(terms, axis=-1)
        kl_p, kl_q = zero, zero
    rows = (lse_s, lse_t, kl_p, kl_q, value)
    return jnp.where(mask, value * scale, zero), rows


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def _dense(s, t, mask, beta, inv_t, scale, chunk):
    return _dense_forward(s, t, mask, beta, inv_t, scale, chunk)[0]


def _dense_fwd(s, t, mask, beta, inv_t, scale, chunk):
    value, rows = _dense_forward(s, t, mask, beta, inv_t, scale, chunk)
    return value, (s, t, mask, *rows)


def _dense_bwd(beta, inv_t, scale, chunk, residuals, g):
    del chunk
    # Behind the barrier the backward's softmaxes are not common subexpressions of the forward's:
    # XLA would otherwise compute them once and keep them, as [rows, V] arrays, for both passes.
    s, t, mask, lse_s, lse_t, kl_p, kl_q, value = lax.optimization_barrier(residuals)
    cdt = lse_s.dtype
    ls, lt = _log_softmaxes(s, t, lse_s, lse_t, inv_t, cdt)
    q, p = jnp.exp(ls), jnp.exp(lt)
    zero = jnp.zeros((), cdt)
    # A zero probability's term is 0 in the value, so its gradient is 0 too: the floors keep
    # `0 * (-inf)` out of the backward exactly as out of the forward.
    if beta == 0.0:
        ds = q - p
        dt = p * (_floor(lt) - _floor(ls) - kl_p[..., None])
    elif beta == 1.0:
        ds = q * ((_floor(ls) - kl_q[..., None]) - _floor(lt))
        dt = p - q
    else:
        # The scalars enter as per-row values computed from the data (0 for every finite row;
        # a NaN row is masked below): as broadcast constants, XLA:CPU's library fusion of these
        # passes would materialise each of them as a [rows, V] operand.
        row_zero = jnp.minimum(jnp.abs(lse_s + lse_t), 0.0)[..., None]
        b, c, f = (row_zero + x for x in (beta, 1.0 - beta, _FLOOR[cdt.name]))
        lm = jnp.maximum(jnp.log(b * p + c * q), f)
        kl_q = jnp.sum(q * (jnp.maximum(ls, f) - lm), axis=-1)
        kl_p = (value - (1.0 - beta) * kl_q) / beta
        # A second barrier: the gradient pass recomputes the mixture instead of sharing it with
        # the reduction above (a shared [rows, V] array otherwise).
        s, t, lse_s, lse_t, kl_q, b, c, f = lax.optimization_barrier(
            (s, t, lse_s, lse_t, kl_q, b, c, f)
        )
        ls, lt = _log_softmaxes(s, t, lse_s, lse_t, inv_t, cdt)
        q, p = jnp.exp(ls), jnp.exp(lt)
        lm = jnp.maximum(jnp.log(b * p + c * q), f)
        ds = c * q * (jnp.maximum(ls, f) - lm - kl_q[..., None])
        dt = b * p * (jnp.maximum(lt, f) - lm - kl_p[..., None])
    gs = (g.astype(cdt) * (scale * inv_t))[..., None]
    keep = mask[..., None]
    ds = jnp.where(keep, gs * ds, zero).astype(s.dtype)
    dt = jnp.where(keep, gs * dt, zero).astype(t.dtype)
    return ds, dt, None


_dense.defvjp(_dense_fwd, _dense_bwd)


def _prepare(name, student_logits, teacher_logits, where, beta, temperature, scale):
    s = _floating(name, "student_logits", student_logits)
    t = _floating(name, "teacher_logits", teacher_logits)
    if s.shape != t.shape:
        raise ValueError(
            f"{name}: `student_logits` and `teacher_logits` must have the same shape; got "
            f"{tuple(s.shape)} and {tuple(t.shape)}."
        )
    options = _options(name, beta, temperature, scale)
    return s, t, _where(name, where, s.shape[:-1]), options


def distillation_divergence(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    beta: float = 0.0,
    temperature: float = 1.0,
    scale_by_temperature_squared: bool = False,
    where: ArrayLike | None = None,
    vocab_chunk: int | None = None,
) -> jax.Array:
    """Generalized Jensen-Shannon divergence between teacher and student, one value per row.

    With ``P = softmax(teacher_logits / T)``, ``Q = softmax(student_logits / T)`` and
    ``M = beta * P + (1 - beta) * Q``::

        loss = beta * KL(P || M) + (1 - beta) * KL(Q || M)     (0 < beta < 1)
        loss = KL(P || Q)  for beta = 0     (forward KL: teacher || student)
        loss = KL(Q || P)  for beta = 1     (reverse KL: student || teacher)

    times ``T ** 2`` with ``scale_by_temperature_squared`` (Hinton et al.'s convention, which keeps
    the gradient's size independent of ``T``).

    Args:
      student_logits: ``[..., V]`` logits or log-probabilities of the student, any float dtype.
      teacher_logits: ``[..., V]`` logits or log-probabilities of the teacher, same shape.
      beta: the mixing weight in ``[0, 1]`` (0: forward KL, 1: reverse KL).
      temperature: ``T > 0``; both distributions are softmaxes of ``logits / T``.
      scale_by_temperature_squared: multiply the divergence (and so its gradient) by ``T ** 2``.
      where: optional boolean ``[...]`` (broadcastable): rows where it is False get a loss of
        exactly 0 and a gradient of exactly 0, whatever their logits (even NaN).
      vocab_chunk: classes per step of the forward's streaming traversal, which reads each input
        once. ``None``: on an accelerator four steps (at least 2048 classes each); on CPU whole
        rows, in three reductions (faster there, see the module's notes on memory; a
        cache-sized chunk there is about ``2**19 // rows`` classes, at least 128). A chunk of at
        least ``V`` reads whole rows on every backend.

    Returns:
      The per-row divergence, shape ``[...]``, float32 (float64 for float64 inputs).

    Raises:
      TypeError: non-floating logits, a non-boolean ``where``, an option of the wrong kind.
      ValueError: mismatched shapes, a scalar, ``beta`` outside ``[0, 1]``, ``temperature <= 0``,
        ``vocab_chunk < 1``.

    Notes:
      Zero probabilities (``-inf`` logits) are safe: ``0 * log 0 = 0`` in the value and the
      gradient. A really infinite divergence (forward KL with the student at ``-inf`` where the
      teacher has mass) comes out above ``1e37`` (float32) or ``+inf``; its student gradient
      stays finite. Gradients flow to both
      inputs; pass a ``lax.stop_gradient`` teacher, or just do not differentiate it, to train the
      student only (the teacher's gradient is then never computed). The custom VJP blocks forward
      mode; use :func:`distillation_divergence_autodiff` for ``jax.jvp`` or Hessians.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import ops
      >>> student = jnp.log(jnp.array([[0.5, 0.5, 0.0]]))
      >>> teacher = jnp.log(jnp.array([[0.25, 0.75, 0.0]]))
      >>> kl = ops.distillation_divergence(student, teacher)  # 0.25 log .5 + 0.75 log 1.5
      >>> print(f"{float(kl[0]):.5f}")
      0.13081
      >>> reverse = ops.distillation_divergence(student, teacher, beta=1.0)  # .5 log 2 + .5 log 2/3
      >>> print(f"{float(reverse[0]):.5f}")
      0.14384
      >>> print(f"{float(ops.distillation_divergence(student, teacher, beta=0.5)[0]):.5f}")
      0.03382
    """
    name = "distillation_divergence"
    s, t, mask, (beta, inv_t, scale) = _prepare(
        name, student_logits, teacher_logits, where, beta, temperature, scale_by_temperature_squared
    )
    if vocab_chunk is not None and (
        isinstance(vocab_chunk, (bool, np.bool_)) or not isinstance(vocab_chunk, (int, np.integer))
    ):
        raise TypeError(f"{name}: `vocab_chunk` must be None or an int >= 1; got {vocab_chunk!r}.")
    if vocab_chunk is not None and vocab_chunk < 1:
        raise ValueError(f"{name}: `vocab_chunk` must be None or an int >= 1; got {vocab_chunk!r}.")
    rows = math.prod(s.shape[:-1])
    chunk = _vocab_chunk(
        rows,
        s.shape[-1],
        None if vocab_chunk is None else int(vocab_chunk),
        jax.default_backend(),
    )
    return _dense(s, t, mask, beta, inv_t, scale, chunk)


def _safe_terms(lp: jax.Array, lx: jax.Array, axis: int = -1) -> jax.Array:
    """``sum(p * (log p - lx))`` with ``0 * log 0 = 0`` and no NaN in its autodiff gradient."""
    p_pos = lp > -jnp.inf
    a = jnp.where(p_pos, lp, 0.0)
    b = jnp.where(p_pos, lx, 0.0)
    terms = jnp.exp(a) * (a - b)
    return jnp.sum(jnp.where(p_pos, terms, jnp.zeros((), terms.dtype)), axis=axis)


def _safe_divergence(lq: jax.Array, lp: jax.Array, beta: float) -> jax.Array:
    """The generalized JSD between normalised log-probabilities, autodiff-safe at zeros."""
    if beta == 0.0:
        return _safe_terms(lp, lq)
    if beta == 1.0:
        return _safe_terms(lq, lp)
    both_zero = jnp.isneginf(lp) & jnp.isneginf(lq)
    lp_m = jnp.where(both_zero, 0.0, lp)
    lq_m = jnp.where(both_zero, 0.0, lq)
    lm = _mixture(lq_m, lp_m, beta)
    return beta * _safe_terms(lp, lm) + (1.0 - beta) * _safe_terms(lq, lm)


def _safe_log_softmax(x: jax.Array) -> jax.Array:
    m = lax.stop_gradient(finite_or_zero(jnp.max(x, axis=-1, keepdims=True)))
    return x - (m + jnp.log(jnp.sum(jnp.exp(x - m), axis=-1, keepdims=True)))


def distillation_divergence_autodiff(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    beta: float = 0.0,
    temperature: float = 1.0,
    scale_by_temperature_squared: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    """:func:`distillation_divergence` written for autodiff: every transformation works.

    Same arguments, values and zero-probability safety; forward mode (``jax.jvp``,
    ``jax.hessian``) is supported, at the memory cost of autodiff (the softmaxes are kept for the
    backward).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxloss import ops
      >>> s, t = jnp.array([[1.0, 0.0, -1.0]]), jnp.array([[0.0, 0.0, -jnp.inf]])
      >>> f = lambda z: ops.distillation_divergence_autodiff(z, t, beta=0.5).sum()
      >>> print(f"{float(f(s)):.5f}", bool(jnp.isfinite(jax.jit(jax.hessian(f))(s)).all()))
      0.05940 True
    """
    name = "distillation_divergence_autodiff"
    s, t, mask, (beta, inv_t, scale) = _prepare(
        name, student_logits, teacher_logits, where, beta, temperature, scale_by_temperature_squared
    )
    cdt = compute_dtype(jnp.promote_types(s.dtype, t.dtype))
    keep = mask[..., None]
    s = jnp.where(keep, s.astype(cdt), 0.0) * inv_t
    t = jnp.where(keep, t.astype(cdt), 0.0) * inv_t
    value = _safe_divergence(_safe_log_softmax(s), _safe_log_softmax(t), beta) * scale
    return jnp.where(mask, value, jnp.zeros((), cdt))


# ----------------------------------------------------------------------------------------------
# the top-k teacher


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _tempered_lse(s: jax.Array, inv_t: float) -> jax.Array:
    return _lse(s.astype(compute_dtype(s.dtype)) * inv_t)


def _tempered_lse_fwd(s, inv_t):
    lse = _tempered_lse(s, inv_t)
    return lse, (s, lse)


def _tempered_lse_bwd(inv_t, residuals, g):
    s, lse = residuals
    cdt = lse.dtype
    # One fused pass: the softmax is recomputed from the saved logsumexp; a row whose logsumexp
    # was not used (g = 0) gets exactly 0, even if its logits are not finite.
    q = jnp.exp(s.astype(cdt) * inv_t - lse[..., None])
    gs = (g * inv_t)[..., None]
    return (jnp.where(gs != 0, gs * q, jnp.zeros((), cdt)).astype(s.dtype),)


_tempered_lse.defvjp(_tempered_lse_fwd, _tempered_lse_bwd)


def _log_rest(log_mass: jax.Array) -> jax.Array:
    """``log(1 - exp(log_mass))`` for a mass in ``[0, 1]``: ``-inf`` (zero gradient) at mass 1."""
    inside = log_mass < 0
    safe = jnp.where(inside, log_mass, -1.0)
    return jnp.where(inside, jnp.log(-jnp.expm1(safe)), -jnp.inf)


def topk_distillation_divergence(
    student_logits: ArrayLike,
    teacher_indices: ArrayLike,
    teacher_values: ArrayLike,
    *,
    beta: float = 0.0,
    temperature: float = 1.0,
    tail: str = "renormalize",
    scale_by_temperature_squared: bool = False,
    where: ArrayLike | None = None,
) -> jax.Array:
    """:func:`distillation_divergence` against a teacher known only by its ``k`` largest classes.

    The teacher is ``teacher_values[..., j]`` at class ``teacher_indices[..., j]``. ``tail`` says
    what happens to the rest of its mass:

    * ``"renormalize"``: ``teacher_values`` are logits (any shift); the teacher is
      ``softmax(values / T)`` over the ``k`` classes and 0 elsewhere. The divergence is then exact
      over the whole vocabulary: the student keeps its full softmax, and the classes outside the
      ``k`` enter as one bucket holding the student's remaining mass ``q_rest`` (for a zero teacher
      probability the bucket's terms sum exactly). Forward KL is the cross-entropy against the
      sparse teacher minus its entropy; reverse KL is ``+inf`` whenever ``q_rest > 0``.
    * ``"residual"``: ``teacher_values`` are the teacher's log-probabilities over the whole
      vocabulary; the mass they leave, ``p_rest = 1 - sum(exp(values))``, is one extra class
      facing the student's ``q_rest``. The divergence is over these ``k + 1`` classes (a lower
      bound of the full one). With ``T != 1`` the teacher's ``k + 1`` log-probabilities are divided
      by ``T`` and renormalised, treating the tail as one class (its tempered mass cannot be known
      from the top ``k``); the student is tempered over the whole vocabulary, then bucketed.

    Args:
      student_logits: ``[..., V]`` logits or log-probabilities of the student.
      teacher_indices: integer ``[..., k]`` distinct class indices in ``[0, V)``.
      teacher_values: ``[..., k]`` teacher logits (``"renormalize"``) or log-probabilities
        (``"residual"``) at those classes.
      beta, temperature, scale_by_temperature_squared, where: as for
        :func:`distillation_divergence`.
      tail: ``"renormalize"`` or ``"residual"``.

    Returns:
      The per-row divergence, shape ``[...]``, float32 (float64 for float64 inputs).

    Raises:
      TypeError: non-integer indices, non-floating values or logits, options of the wrong kind.
      ValueError: mismatched shapes, an unknown ``tail``, options out of range.

    Notes:
      Only the student's logsumexp reads the ``[..., V]`` logits (a custom VJP saving it alone);
      everything else works on ``[..., k + 1]`` arrays. Indices must be distinct (a repeated class
      would count twice); an index outside ``[0, V)`` is clamped by the gather and gives a wrong
      value that jit cannot detect.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss import ops
      >>> student = jnp.log(jnp.array([[0.5, 0.3, 0.2]]))
      >>> idx, vals = jnp.array([[0, 1]]), jnp.log(jnp.array([[0.6, 0.3]]))
      >>> kl = ops.topk_distillation_divergence(student, idx, vals)  # teacher (2/3, 1/3, 0)
      >>> print(f"{float(kl[0]):.5f}")
      0.22691
      >>> kl = ops.topk_distillation_divergence(student, idx, vals, tail="residual")
      >>> print(f"{float(kl[0]):.5f}")  # teacher (0.6, 0.3, rest 0.1), student (0.5, 0.3, 0.2)
      0.04008
    """
    name = "topk_distillation_divergence"
    s = _floating(name, "student_logits", student_logits)
    values = _floating(name, "teacher_values", teacher_values)
    indices = jnp.asarray(teacher_indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(
            f"{name}: `teacher_indices` must hold integer class indices; got dtype {indices.dtype}."
        )
    if indices.shape != values.shape or indices.shape[:-1] != s.shape[:-1]:
        raise ValueError(
            f"{name}: `teacher_indices` and `teacher_values` must both have shape [..., k] with "
            f"the leading axes of `student_logits` {tuple(s.shape[:-1])}; got "
            f"{tuple(indices.shape)} and {tuple(values.shape)}."
        )
    tail = static_choice(name, "tail", tail, TAILS)
    beta, inv_t, scale = _options(name, beta, temperature, scale_by_temperature_squared)
    mask = _where(name, where, s.shape[:-1])
    cdt = compute_dtype(jnp.promote_types(s.dtype, values.dtype))
    keep = mask[..., None]

    lse_s = jnp.where(mask, _tempered_lse(s, inv_t), 0.0)
    picked = jnp.take_along_axis(s, indices.astype(jnp.int32), axis=-1).astype(cdt)
    lq_k = jnp.where(keep, picked * inv_t - lse_s[..., None], 0.0)
    lq = jnp.concatenate([lq_k, _log_rest(jax.nn.logsumexp(lq_k, axis=-1))[..., None]], -1)

    v = jnp.where(keep, values.astype(cdt), 0.0)
    if tail == "renormalize":
        lp_k = _safe_log_softmax(v * inv_t)
        lp = jnp.concatenate([lp_k, jnp.full((*lp_k.shape[:-1], 1), -jnp.inf, cdt)], -1)
    else:
        log_rest = _log_rest(jax.nn.logsumexp(v, axis=-1))[..., None]
        lp = _safe_log_softmax(jnp.concatenate([v, log_rest], -1) * inv_t)
    value = _safe_divergence(lq, lp, beta) * scale
    return jnp.where(mask, value, jnp.zeros((), cdt))
