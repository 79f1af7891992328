"""Metric-learning kernels with PyTorch's and optax's semantics: explicit triplets and NT-Xent.

Prediction first, options keyword-optional, per-example output (``ntxent`` aside, whose optax
definition is one mean over all positive pairs of the batch).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss.ops._common import as_floating


def p_norm(x: jax.Array, p: float, axis: int = -1) -> jax.Array:
    """``||x||_p`` along ``axis`` with a zero (not NaN) gradient at ``x = 0``."""
    if p == float("inf"):
        return jnp.max(jnp.abs(x), axis=axis)
    if p == 2.0:
        sq = jnp.sum(x * x, axis=axis)
        pos = sq > 0
        # ``sq * 0`` rather than 0: a NaN coordinate keeps the norm NaN instead of reading as 0
        return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), sq * 0.0)
    ax = jnp.abs(x)
    nz = ax > 0
    total = jnp.sum(jnp.where(nz, jnp.where(nz, ax, 1.0) ** p, ax * 0.0), axis=axis)
    pos = total > 0
    return jnp.where(pos, jnp.where(pos, total, 1.0) ** (1.0 / p), total * 0.0)


def pairwise_distance(x1: ArrayLike, x2: ArrayLike, p: float = 2.0, eps: float = 1e-6) -> jax.Array:
    """PyTorch's ``pairwise_distance``: ``||x1 - x2 + eps||_p`` over the last axis.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops.metric_learning import pairwise_distance
      >>> print(f"{float(pairwise_distance(jnp.zeros(2), jnp.array([3.0, 4.0]), eps=0.0)):.1f}")
      5.0
    """
    x1 = as_floating("pairwise_distance", "x1", x1)
    x2 = as_floating("pairwise_distance", "x2", x2)
    return p_norm(x1 - x2 + eps, p)


def power_distance(
    x1: ArrayLike, x2: ArrayLike, degree: float = 2.0, eps: float = 1e-6, axis: int = -1
) -> jax.Array:
    """optax's triplet distance: ``(sum((x1 - x2) ** degree) + eps) ** (1 / degree)`` over ``axis``.

    Unlike :func:`pairwise_distance` (PyTorch's ``||x1 - x2 + eps||_p``), ``eps`` is added to the
    power sum, which keeps the gradient finite where ``x1 == x2``, and there is no absolute
    value: an odd ``degree`` sums signed powers, exactly as optax's ``triplet_margin_loss`` does.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops.metric_learning import power_distance
      >>> print(f"{float(power_distance(jnp.zeros(2), jnp.array([3.0, 4.0]), eps=0.0)):.1f}")
      5.0
    """
    x1 = as_floating("power_distance", "x1", x1)
    x2 = as_floating("power_distance", "x2", x2)
    return jnp.power(jnp.sum(jnp.power(x1 - x2, degree), axis=axis) + eps, 1.0 / degree)


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
) -> jax.Array:
    """PyTorch's ``triplet_margin_loss`` per triplet, unreduced.

    ``max(d(a, p) - d(a, n) + margin, 0)`` with ``d(x, y) = ||x - y + eps||_p`` (the ``eps`` is
    added to the difference, as in PyTorch); with ``swap`` the negative distance is
    ``min(d(a, n), d(p, n))`` (Balntas et al., 2016).

    Args:
      anchor, positive, negative: ``[..., dim]`` arrays of the same shape.
      margin: the margin; p: the norm degree (> 0, ``inf`` allowed); eps: added to differences;
      swap: use the distance swap.

    Returns:
      ``[...]``: one loss per triplet.

    Raises:
      TypeError: non-floating inputs. ValueError: shapes that differ.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops.metric_learning import triplet_margin_loss
      >>> a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> print(triplet_margin_loss(a, a + 0.1, jnp.array([[1.0, 0.0], [0.0, 1.0]]), eps=0.0))
      [0.14142138 0.14142138]
    """
    name = "triplet_margin_loss"
    a = as_floating(name, "anchor", anchor)
    pos = as_floating(name, "positive", positive)
    neg = as_floating(name, "negative", negative)
    if not a.shape == pos.shape == neg.shape:
        raise ValueError(
            f"{name}: `anchor`, `positive` and `negative` must have the same shape; got "
            f"{tuple(a.shape)}, {tuple(pos.shape)} and {tuple(neg.shape)}."
        )
    d_pos = p_norm(a - pos + eps, p)
    d_neg = p_norm(a - neg + eps, p)
    if swap:
        d_neg = jnp.minimum(d_neg, p_norm(pos - neg + eps, p))
    return jnp.maximum(d_pos - d_neg + margin, 0.0)


def cosine_embedding_loss(
    input1: ArrayLike, input2: ArrayLike, target: ArrayLike, margin: float = 0.0
) -> jax.Array:
    """PyTorch's ``cosine_embedding_loss`` per pair, unreduced.

    ``1 - cos`` where ``target == 1``, ``max(cos - margin, 0)`` where ``target == -1``, 0 elsewhere,
    with ``cos = x1.x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` over the last axis.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.ops.metric_learning import cosine_embedding_loss
      >>> x1, x2 = jnp.array([[1.0, 0.0]]), jnp.array([[0.6, 0.8]])
      >>> print(np.asarray(cosine_embedding_loss(x1, x2, jnp.array([1]))).round(4))
      [0.4]
    """
    name = "cosine_embedding_loss"
    x1 = as_floating(name, "input1", input1)
    x2 = as_floating(name, "input2", input2)
    target = jnp.asarray(target)
    if x1.shape != x2.shape or target.shape != x1.shape[:-1]:
        raise ValueError(
            f"{name}: `input1` and `input2` must have one shape [..., dim] and `target` [...]; got "
            f"{tuple(x1.shape)}, {tuple(x2.shape)} and {tuple(target.shape)}."
        )
    cos = jnp.sum(x1 * x2, -1) * lax.rsqrt(
        (jnp.sum(x1 * x1, -1) + 1e-12) * (jnp.sum(x2 * x2, -1) + 1e-12)
    )
    similar = jnp.where(target == 1, 1.0 - cos, 0.0)
    return similar + jnp.where(target == -1, jnp.maximum(cos - margin, 0.0), 0.0)


def hinge_embedding_loss(input: ArrayLike, target: ArrayLike, margin: float = 1.0) -> jax.Array:
    """PyTorch's ``hinge_embedding_loss`` per element, unreduced.

    ``input`` where ``target != -1``, plus ``max(margin - input, 0)`` where ``target != 1``.

    Examples:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxloss.ops.metric_learning import hinge_embedding_loss
      >>> print(np.asarray(hinge_embedding_loss(jnp.array([0.3, 0.4]), jnp.array([1, -1]))))
      [0.3 0.6]
    """
    x = as_floating("hinge_embedding_loss", "input", input)
    target = jnp.asarray(target)
    return jnp.where(target != -1, x, 0.0) + jnp.where(
        target != 1, jnp.maximum(margin - x, 0.0), 0.0
    )


def ntxent(embeddings: ArrayLike, labels: ArrayLike, temperature: float = 0.07) -> jax.Array:
    """NT-Xent with optax's semantics: one mean over every ordered positive pair of the batch.

    With cosine similarities ``s = cos(e_i, e_j) / temperature`` (norms floored at the dtype's
    machine epsilon), each pair ``(i, j)``, ``i != j`` with equal labels, contributes
    ``-log(exp(s_ij) / (exp(s_ij) + sum_{k: label_k != label_i} exp(s_ik)))``; the result is their
    mean. A batch without positive pairs gives 0 (optax gives NaN there).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.ops.metric_learning import ntxent
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(f"{float(ntxent(emb, jnp.array([0, 0, 1, 1]), temperature=1.0)):.4f}")
      0.6736
    """
    name = "ntxent"
    e = as_floating(name, "embeddings", embeddings)
    labels = jnp.asarray(labels)
    if e.ndim != 2 or labels.shape != e.shape[:1]:
        raise ValueError(
            f"{name}: `embeddings` must be [batch, dim] and `labels` [batch]; got "
            f"{tuple(e.shape)} and {tuple(labels.shape)}."
        )
    terms, positive = ntxent_pair_terms(e, labels, e, labels, temperature, 0)
    count = jnp.sum(positive)
    total = jnp.sum(jnp.where(positive, terms, 0.0))
    return jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)


def ntxent_pair_terms(
    embeddings: jax.Array,
    labels: jax.Array,
    ref_embeddings: jax.Array,
    ref_labels: jax.Array,
    temperature: float | jax.Array,
    anchor_offset: int | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Per-pair NT-Xent terms ``[batch, ref]`` and the mask of positive pairs they hold.

    ``anchor_offset`` is the row of ``ref_embeddings`` holding ``embeddings[0]``: the pairs
    ``(i, i + anchor_offset)`` are a sample with itself and never count.
    """
    eps = jnp.finfo(embeddings.dtype).eps
    norm = jnp.maximum(jnp.linalg.norm(embeddings, axis=-1, keepdims=True), eps)
    ref_norm = jnp.maximum(jnp.linalg.norm(ref_embeddings, axis=-1, keepdims=True), eps)
    s = (embeddings / norm) @ (ref_embeddings / ref_norm).T / temperature
    same = labels[:, None] == ref_labels[None, :]
    rows = lax.broadcasted_iota(jnp.int32, s.shape, 0) + anchor_offset
    self_pair = rows == lax.broadcasted_iota(jnp.int32, s.shape, 1)
    positive = same & ~self_pair
    negative = ~same
    neg_inf = jnp.asarray(-jnp.inf, s.dtype)
    # log of the sum over negatives, shifted by the largest negative (not the row's largest
    # logit): at a tiny temperature every negative can sit thousands below a positive, and a
    # shared shift would underflow all of them to log(0)
    shift = jnp.max(jnp.where(negative, s, neg_inf), 1, keepdims=True, initial=-jnp.inf)
    shift = lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))
    neg_sum = jnp.sum(jnp.where(negative, jnp.exp(jnp.where(negative, s - shift, 0.0)), 0.0), 1)
    has_negative = neg_sum > 0  # the largest negative alone contributes exp(0) = 1
    log_neg = jnp.where(
        has_negative, shift[:, 0] + jnp.log(jnp.where(has_negative, neg_sum, 1.0)), neg_inf
    )
    # -log(e^s / (e^s + e^log_neg)) = softplus(log_neg - s)
    terms = jax.nn.softplus(log_neg[:, None] - jnp.where(positive, s, 0.0))
    return jnp.where(positive, terms, 0.0), positive
