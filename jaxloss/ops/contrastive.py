"""Image-text contrastive kernels (CLIP, SigLIP) that never build the ``[B, B]`` logits.

Both kernels take image and text embeddings ``[b, dim]`` (row ``i`` of each is a matching pair)
and return one loss per pair ``[b]``, prediction first and options keyword-only.

* ``chunk_size``: the texts are visited in blocks of ``chunk_size`` rows; per block the
  ``[b, chunk]`` logits are formed, folded into running row statistics (an online logsumexp for
  CLIP, a running sum for SigLIP) and dropped. The block body is rematerialised under autodiff
  (``jax.checkpoint``), so the backward pass recomputes each block instead of keeping it:
  memory grows with ``b * chunk``, not ``b * B``.
* ``axis_name``: inside ``shard_map`` each device holds its slice of the pairs, and the result
  equals the single-device result on the global batch (value and gradient). ``collective``
  picks how texts reach the other devices: ``"all_gather"`` gathers every text embedding
  (``[B, dim]`` per device) and combines CLIP's column statistics with one ``[B]`` ``pmax`` and
  ``psum``; ``"ring"`` passes text blocks around the devices with ``ppermute``, CLIP's column
  statistics travelling with their block, so that no device ever holds more than one block.
  The ring is the default: at B=4096, D=512 over 8 devices it needs about two thirds of the
  all-gather's temp memory per device for a similar time (``benchmarks/bench_contrastive.py``,
  numbers in ``benchmarks/results/``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss.ops._common import as_floating
from jaxloss.ops._sharding import axis_tuple, vary_like

COLLECTIVES = ("all_gather", "ring")


def _blocks(k: jax.Array, chunk: int) -> tuple[jax.Array, jax.Array]:
    """``k [n, d]`` as zero-padded ``[blocks, chunk, d]`` and the ``[blocks, chunk]`` valid mask."""
    n = k.shape[0]
    chunk = max(chunk, 1)  # an empty batch still makes one (all-padding) block
    nb = max(-(-n // chunk), 1)
    pad = nb * chunk - n
    kp = jnp.pad(k, ((0, pad), (0, 0)))
    valid = jnp.arange(nb * chunk) < n
    return kp.reshape(nb, chunk, k.shape[1]), valid.reshape(nb, chunk)


def _lse_fold(m: jax.Array, s: jax.Array, x: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """Fold the values ``x`` (``-inf`` = absent) into running ``(max, sum exp(. - max))``."""
    m_new = lax.stop_gradient(jnp.maximum(m, jnp.max(x, axis=axis)))
    shift = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
    decay = jnp.where(jnp.isneginf(m), 0.0, jnp.exp(m - shift))
    return m_new, s * decay + jnp.sum(jnp.exp(x - jnp.expand_dims(shift, axis)), axis=axis)


def _lse(m: jax.Array, s: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(m), m, 0.0) + jnp.log(s)


def _clip_stream(x, y, scale, chunk):
    """Row logsumexp of ``scale * x @ y.T`` and, per column, the logsumexp over these rows."""
    yb, valid = _blocks(y, chunk)
    neg_inf = jnp.asarray(-jnp.inf, x.dtype)

    @jax.checkpoint
    def body(carry, block):
        m, s = carry
        y_blk, ok = block
        logits = jnp.where(ok[None, :], scale * (x @ y_blk.T), neg_inf)
        m, s = _lse_fold(m, s, logits, axis=1)
        cm = lax.stop_gradient(jnp.max(logits, axis=0, initial=-jnp.inf))
        cm = jnp.where(jnp.isfinite(cm), cm, 0.0)
        col = cm + jnp.log(jnp.sum(jnp.exp(logits - cm[None, :]), axis=0))
        return (m, s), col

    init = (jnp.full(x.shape[:1], -jnp.inf, x.dtype), jnp.zeros(x.shape[:1], x.dtype))
    init = tuple(vary_like(t, x, y, scale) for t in init)
    (m, s), cols = lax.scan(body, init, (yb, valid))
    return _lse(m, s), cols.reshape(-1)[: y.shape[0]]


def _siglip_stream(x, y, scale, bias, chunk):
    """Row sums of ``softplus(scale * x @ y.T + bias)``."""
    yb, valid = _blocks(y, chunk)

    @jax.checkpoint
    def body(acc, block):
        y_blk, ok = block
        logits = scale * (x @ y_blk.T) + bias
        return acc + jnp.sum(jnp.where(ok[None, :], jax.nn.softplus(logits), 0.0), axis=1), None

    init = vary_like(jnp.zeros(x.shape[:1], x.dtype), x, y, scale, bias)
    acc, _ = lax.scan(body, init, (yb, valid))
    return acc


def _ring(axis_name: Any) -> tuple[int, list[tuple[int, int]]]:
    n = 1
    for a in axis_tuple(axis_name):
        n *= lax.axis_size(a)
    return n, [(i, (i + 1) % n) for i in range(n)]


def _check(name, image, text, chunk_size, collective):
    image = as_floating(name, "image", image)
    text = as_floating(name, "text", text)
    if image.ndim != 2 or image.shape != text.shape:
        raise ValueError(
            f"{name}: `image` and `text` must both be [batch, dim]; got {tuple(image.shape)} "
            f"and {tuple(text.shape)}."
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"{name}: `chunk_size` must be None or an int >= 1; got {chunk_size!r}.")
    if collective not in COLLECTIVES:
        raise ValueError(f"{name}: `collective` must be one of {COLLECTIVES}; got {collective!r}.")
    dtype = jnp.promote_types(image.dtype, jnp.float32)
    return image.astype(dtype), text.astype(dtype)


def clip_loss(
    image: ArrayLike,
    text: ArrayLike,
    *,
    logit_scale: ArrayLike = 1.0 / 0.07,
    chunk_size: int | None = None,
    axis_name: Any = None,
    collective: str = "ring",
) -> jax.Array:
    """CLIP's symmetric InfoNCE per pair, without the ``[B, B]`` logits.

    With ``L = logit_scale * image @ text.T`` over the (global) batch::

        loss_i = (logsumexp_j L_ij - L_ii) / 2 + (logsumexp_j L_ji - L_ii) / 2

    so that the mean over pairs is CLIP's ``(CE(L, I) + CE(L.T, I)) / 2``. The embeddings are used
    as given (normalise them first, as CLIP does).

    Args:
      image, text: ``[b, dim]`` embeddings, row ``i`` of each a matching pair.
      logit_scale: the multiplier of the similarities (CLIP learns its log; pass ``exp``). A
        traced scalar is fine: its gradient is exact.
      chunk_size: visit the texts (and images) in blocks of this many rows (``None``: one block).
      axis_name: inside ``shard_map``, the axis the pairs are split over (see the module doc).
      collective: ``"ring"`` (default) or ``"all_gather"``.

    Returns:
      ``[b]`` per-pair losses (the local pairs under ``shard_map``).

    Raises:
      TypeError: non-floating embeddings. ValueError: shapes or options.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.ops.contrastive import clip_loss
      >>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> print(np.asarray(clip_loss(img, txt, logit_scale=2.0)).round(4))
      [0.8707 0.6711 0.8521]
    """
    x, y = _check("clip_loss", image, text, chunk_size, collective)
    scale = jnp.asarray(logit_scale, x.dtype)
    b = x.shape[0]
    diag = scale * jnp.sum(x * y, axis=1)
    if axis_name is None:
        rows, cols = _clip_stream(x, y, scale, chunk_size or b)
        return 0.5 * (rows + cols) - diag
    if collective == "all_gather":
        y_all = lax.all_gather(y, axis_name, tiled=True)
        rows, col_part = _clip_stream(x, y_all, scale, chunk_size or b)
        # Each device saw its own rows of every column: combine the partial logsumexps.
        cm = lax.pmax(lax.stop_gradient(col_part), axis_name)
        cm = jnp.where(jnp.isfinite(cm), cm, 0.0)
        col_all = cm + jnp.log(lax.psum(jnp.exp(col_part - cm), axis_name))
        cols = lax.dynamic_slice_in_dim(col_all, lax.axis_index(axis_name) * b, b)
        return 0.5 * (rows + cols) - diag
    n, perm = _ring(axis_name)
    chunk = min(chunk_size or b, b)

    @jax.checkpoint
    def step(carry, _):
        m, s, y_blk, cm, cs = carry
        rows_blk, col_blk = _clip_stream(x, y_blk, scale, chunk)
        m, s = _lse_fold(m, s, rows_blk[:, None], axis=1)
        cm, cs = _lse_fold(cm, cs, col_blk[:, None], axis=1)
        y_blk, cm, cs = lax.ppermute((y_blk, cm, cs), axis_name, perm)
        return (m, s, y_blk, cm, cs), None

    inf = jnp.full((b,), -jnp.inf, x.dtype)
    zero = jnp.zeros((b,), x.dtype)
    init = tuple(vary_like(t, x, y, scale) for t in (inf, zero, y, inf, zero))
    (m, s, _, cm, cs), _ = lax.scan(step, init, None, length=n)
    return 0.5 * (_lse(m, s) + _lse(cm, cs)) - diag


def siglip_loss(
    image: ArrayLike,
    text: ArrayLike,
    *,
    logit_scale: ArrayLike = 10.0,
    logit_bias: ArrayLike = -10.0,
    chunk_size: int | None = None,
    axis_name: Any = None,
    collective: str = "ring",
) -> jax.Array:
    """SigLIP's pairwise sigmoid loss per image, without the ``[B, B]`` logits.

    With ``L = logit_scale * image @ text.T + logit_bias`` and ``z_ij = 1`` for ``i = j`` (the
    matching pair), ``-1`` otherwise (Zhai et al., 2023)::

        loss_i = sum_j -log(sigmoid(z_ij * L_ij)) = sum_j softplus(L_ij) - L_ii

    so that the mean over images is the paper's loss (the sum over all pairs divided by ``B``).

    Args:
      image, text: ``[b, dim]`` embeddings (normalise them first, as SigLIP does).
      logit_scale, logit_bias: the learnt temperature (as a multiplier) and bias; traced scalars
        are fine. The paper initialises them at 10 and -10.
      chunk_size, axis_name, collective: as for :func:`clip_loss`.

    Returns:
      ``[b]`` per-image losses.

    Raises:
      TypeError: non-floating embeddings. ValueError: shapes or options.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.ops.contrastive import siglip_loss
      >>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> print(np.asarray(siglip_loss(img, txt, logit_scale=2.0, logit_bias=-1.0)).round(4))
      [1.5489 2.1489 2.6062]
    """
    x, y = _check("siglip_loss", image, text, chunk_size, collective)
    scale = jnp.asarray(logit_scale, x.dtype)
    bias = jnp.asarray(logit_bias, x.dtype)
    b = x.shape[0]
    diag = scale * jnp.sum(x * y, axis=1) + bias
    if axis_name is None:
        return _siglip_stream(x, y, scale, bias, chunk_size or b) - diag
    if collective == "all_gather":
        y_all = lax.all_gather(y, axis_name, tiled=True)
        return _siglip_stream(x, y_all, scale, bias, chunk_size or b) - diag
    n, perm = _ring(axis_name)
    chunk = min(chunk_size or b, b)

    @jax.checkpoint
    def step(carry, _):
        acc, y_blk = carry
        acc = acc + _siglip_stream(x, y_blk, scale, bias, chunk)
        return (acc, lax.ppermute(y_blk, axis_name, perm)), None

    init = (vary_like(jnp.zeros((b,), x.dtype), x, y, scale, bias), y)
    (acc, _), _ = lax.scan(step, init, None, length=n)
    return acc - diag
