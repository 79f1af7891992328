"""Image-text contrastive losses: ``y_pred = (image, text)`` embeddings ``[batch, dim]`` each.

Row ``i`` of ``image`` and row ``i`` of ``text`` are a matching pair; every other pairing of the
batch is a negative. ``y_true`` is ignored (pass ``None``). The learnt temperature (and SigLIP's
bias) are call-time inputs, so they can be trained: ``loss(None, (img, txt), logit_scale=s)`` or
``log_logit_scale=log_s`` (CLIP's parameterisation).

The ``[B, B]`` similarity matrix is never built with ``chunk_size`` (texts in blocks, the block
recomputed in the backward pass), and with ``axis_name`` inside ``shard_map`` every device keeps
its slice of the pairs while the loss and its gradient are those of the global batch. The kernels
are :func:`jaxloss.ops.contrastive.clip_loss` and :func:`jaxloss.ops.contrastive.siglip_loss`.

>>> import jax.numpy as jnp, jaxloss
>>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
>>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
>>> print(f"{float(jaxloss.ClipLoss()(None, (img, txt), logit_scale=2.0)):.4f}")
0.7980
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option
from jaxloss.ops import contrastive as ops

CHUNK = c.POSITIVE_INT.optional()
COLLECTIVE = c.Check(
    lambda x: isinstance(x, str), '"all_gather" or "ring"', range_ok=lambda x: x in ops.COLLECTIVES
)


def _pair(name: str, y_pred: Any, normalize: bool) -> tuple[jax.Array, jax.Array]:
    if not isinstance(y_pred, (tuple, list)) or len(y_pred) != 2:
        raise TypeError(
            f"{name}: `y_pred` must be the tuple (image, text); got {type(y_pred).__name__}."
        )
    image = c.as_float(y_pred[0], loss=name, arg="y_pred[0]")
    text = c.as_float(y_pred[1], loss=name, arg="y_pred[1]")
    if image.ndim != 2 or image.shape != text.shape:
        raise ValueError(
            f"{name}: `y_pred` must hold image and text embeddings of one shape [batch, dim]; "
            f"got {tuple(image.shape)} and {tuple(text.shape)}."
        )
    if normalize:
        unit = lambda v: v * jax.lax.rsqrt(jnp.maximum(jnp.sum(v * v, -1, keepdims=True), 1e-12))
        image, text = unit(image), unit(text)
    return image, text


def _scale(name: str, logit_scale: Any, log_logit_scale: Any, default: float) -> Any:
    if logit_scale is not None and log_logit_scale is not None:
        raise ValueError(
            f"{name}: `logit_scale` and `log_logit_scale` must not both be given; got "
            f"{logit_scale!r} and {log_logit_scale!r}."
        )
    if log_logit_scale is not None:
        return jnp.exp(jnp.asarray(log_logit_scale))
    return default if logit_scale is None else logit_scale


def clip_loss(
    y_true: ArrayLike | None,
    y_pred: tuple[ArrayLike, ArrayLike],
    normalize: bool = True,
    chunk_size: int | None = None,
    collective: str = "ring",
    *,
    logit_scale: ArrayLike | None = None,
    log_logit_scale: ArrayLike | None = None,
    axis_name: Any = None,
) -> jax.Array:
    """CLIP's symmetric InfoNCE (Radford et al., 2021) per image-text pair.

    With ``L = logit_scale * image @ text.T`` over the (global) batch::

        loss_i = (logsumexp_j L_ij - L_ii) / 2 + (logsumexp_j L_ji - L_ii) / 2

    whose mean is CLIP's ``(CE(L, arange) + CE(L.T, arange)) / 2``.

    Args:
      y_true: ignored (pass ``None``).
      y_pred: the tuple ``(image, text)`` of ``[batch, dim]`` embeddings.
      normalize: L2-normalise the embeddings first (CLIP's cosine similarities).
      chunk_size: visit the texts in blocks of this many rows; ``None``: one block.
      collective: ``"ring"`` (default) or ``"all_gather"``, how texts reach the other devices under
        ``axis_name`` (see :mod:`jaxloss.ops.contrastive`).
      logit_scale: the similarity multiplier (default ``1 / 0.07``, CLIP's initial value), or
      log_logit_scale: its logarithm, CLIP's learnt parameter (keyword only, at most one).
      axis_name: inside ``shard_map``, the axis the pairs are split over.

    Returns:
      ``[batch]`` per-pair losses.

    Raises:
      TypeError: ``y_pred`` not a pair or a bad option kind. ValueError: shapes or values.

    Notes:
      Bad values: NaN in one embedding makes the loss NaN for every sample (each softmax meets every
      embedding of the batch). ``y_true`` is not read.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> print(np.asarray(jaxloss.clip_loss(None, (img, txt), logit_scale=2.0)).round(4))
      [0.8707 0.6711 0.8521]
    """
    name = "clip_loss"
    normalize = c.check_option(name, "normalize", normalize, c.BOOL)
    chunk_size = c.check_option(name, "chunk_size", chunk_size, CHUNK)
    collective = c.check_option(name, "collective", collective, COLLECTIVE)
    image, text = _pair(name, y_pred, normalize)
    scale = _scale(name, logit_scale, log_logit_scale, 1.0 / 0.07)
    return ops.clip_loss(
        image,
        text,
        logit_scale=scale,
        chunk_size=chunk_size,
        axis_name=axis_name,
        collective=collective,
    )


class _ImageText(Loss):
    """The class handles pass their ``axis_name`` to the kernel (not registered)."""

    def cast_inputs(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        # y_true is ignored and may be None
        if y_true is None:
            return None, super().cast_inputs(jnp.zeros(()), y_pred)[1]
        return super().cast_inputs(y_true, y_pred)

    def call(self, y_true: Any, y_pred: Any, **inputs: Any) -> jax.Array:
        return self.function(y_true, y_pred, **self.options(), **inputs, axis_name=self.axis_name)  # type: ignore[misc]


class ClipLoss(_ImageText, Loss, function=clip_loss, aliases=("clip",), inputs="image_text"):
    """Class handle of :func:`clip_loss`: ``loss(None, (image, text), logit_scale=...)``.

    With ``axis_name`` inside ``shard_map`` the value and gradient are the global batch's.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> loss = jaxloss.ClipLoss(chunk_size=2)
      >>> value, grad = jax.value_and_grad(
      ...     lambda t: loss(None, (img, txt), log_logit_scale=t))(jnp.log(2.0))
      >>> print(f"{float(value):.4f} {float(grad):.4f}")
      0.7980 -0.2136
    """

    normalize: bool = option(default=True, check=c.BOOL)
    chunk_size: int | None = option(default=None, check=CHUNK)
    collective: str = option(default="ring", check=COLLECTIVE)


def siglip_loss(
    y_true: ArrayLike | None,
    y_pred: tuple[ArrayLike, ArrayLike],
    normalize: bool = True,
    chunk_size: int | None = None,
    collective: str = "ring",
    *,
    logit_scale: ArrayLike | None = None,
    log_logit_scale: ArrayLike | None = None,
    logit_bias: ArrayLike | None = None,
    axis_name: Any = None,
) -> jax.Array:
    """SigLIP's pairwise sigmoid loss (Zhai et al., 2023) per image.

    With ``L = logit_scale * image @ text.T + logit_bias`` and ``z_ij = 1`` on the matching pair,
    ``-1`` elsewhere::

        loss_i = sum_j -log(sigmoid(z_ij * L_ij))

    whose mean is the paper's loss (all pairs summed, divided by the batch size).

    Args:
      y_true: ignored (pass ``None``).
      y_pred, normalize, chunk_size, collective, log_logit_scale, axis_name: as for
        :func:`clip_loss`.
      logit_scale: the multiplier (default 10, SigLIP's initial value).
      logit_bias: the learnt bias (default -10, SigLIP's initial value; keyword only).

    Returns:
      ``[batch]`` per-image losses.

    Raises:
      TypeError, ValueError: as for :func:`clip_loss`.

    Notes:
      Bad values: NaN in one image embedding makes that sample's loss NaN; the other samples are
      exact. NaN in a text embedding reaches every sample (each image meets every text). ``y_true``
      is not read.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> loss = jaxloss.siglip_loss(None, (img, txt), logit_scale=2.0, logit_bias=-1.0)
      >>> print(np.asarray(loss).round(4))
      [1.5489 2.1489 2.6062]
    """
    name = "siglip_loss"
    normalize = c.check_option(name, "normalize", normalize, c.BOOL)
    chunk_size = c.check_option(name, "chunk_size", chunk_size, CHUNK)
    collective = c.check_option(name, "collective", collective, COLLECTIVE)
    image, text = _pair(name, y_pred, normalize)
    scale = _scale(name, logit_scale, log_logit_scale, 10.0)
    bias = -10.0 if logit_bias is None else logit_bias
    return ops.siglip_loss(
        image,
        text,
        logit_scale=scale,
        logit_bias=bias,
        chunk_size=chunk_size,
        axis_name=axis_name,
        collective=collective,
    )


class SigLipLoss(_ImageText, Loss, function=siglip_loss, aliases=("siglip",), inputs="image_text"):
    """Class handle of :func:`siglip_loss`: ``loss(None, (image, text), logit_scale=..)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> img = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
      >>> txt = jnp.array([[0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
      >>> loss = jaxloss.SigLipLoss(chunk_size=2)
      >>> print(f"{float(loss(None, (img, txt), logit_scale=2.0, logit_bias=-1.0)):.4f}")
      2.1013
    """

    normalize: bool = option(default=True, check=c.BOOL)
    chunk_size: int | None = option(default=None, check=CHUNK)
    collective: str = option(default="ring", check=COLLECTIVE)
