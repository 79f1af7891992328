"""Metric-learning losses: integer labels ``[batch]`` and embeddings ``[batch, dim]``, with optional
reference labels and embeddings passed at call time.

>>> import jax.numpy as jnp, jaxloss
>>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
>>> print(f"{float(jaxloss.Circle(gamma=2.0)(jnp.array([0, 0, 1, 1]), emb)):.4f}")
0.9337
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss._loss import Loss, option


def _masked_logsumexp(x: jax.Array, mask: jax.Array, axis: int) -> jax.Array:
    """logsumexp over the ``mask``-ed entries; ``-inf`` (with a zero gradient) where none are."""
    neg_inf = jnp.asarray(-jnp.inf, x.dtype)
    m = jnp.max(jnp.where(mask, x, neg_inf), axis=axis, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    e = jnp.where(mask, jnp.exp(jnp.where(mask, x - m, 0.0)), 0.0)
    s = jnp.sum(e, axis=axis, keepdims=True)
    ok = s > 0
    out = jnp.where(ok, m + jnp.log(jnp.where(ok, s, 1.0)), neg_inf)
    return jnp.squeeze(out, axis)


def circle(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    gamma: float = 80.0,
    margin: float = 0.4,
) -> jax.Array:
    """Circle loss (Sun et al., 2020) between integer labels and L2-normalised embeddings.

    With cosine distances ``d = max(1 - y_pred @ ref_embeddings.T, 0)``, positive pairs (same label,
    the diagonal excluded when ``remove_diagonal``) and negative pairs::

        p_loss = logsumexp(-gamma * max(margin + d, 0) * (margin - d))      over positives
        n_loss = logsumexp(gamma * max(1 + margin - d, 0) * (1 - margin - d)) over negatives
        loss   = softplus(p_loss + n_loss)

    Args:
      y_true: integer labels ``[batch]``.
      y_pred: L2-normalised embeddings ``[batch, dim]``.
      ref_labels: labels of the reference embeddings (default ``y_true``).
      ref_embeddings: L2-normalised reference embeddings ``[ref, dim]`` (default ``y_pred``).
      remove_diagonal: drop self-similarities from the positive pairs.
      gamma: scale of the similarity scores (> 0).
      margin: relaxation margin.

    Returns:
      Per-sample loss ``[batch]``; 0 for a sample without positive or negative pairs (the class
      handle masks those out of the mean, as Keras does).

    Raises:
      TypeError: non-integer labels.
      ValueError: shapes that do not line up.

    Examples:
      >>> import jax.numpy as jnp, numpy as np, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> print(np.asarray(jaxloss.circle(jnp.array([0, 0, 1, 1]), emb, gamma=2.0)).round(4))
      [0.8577 1.0097 1.0097 0.8577]
    """
    name = "circle"
    y_pred = c.as_float(y_pred)
    y_true = jnp.asarray(y_true)
    c.check_integer(name, "y_true", y_true)
    if y_true.ndim == 2 and y_true.shape[-1] == 1:
        y_true = y_true[:, 0]
    if y_pred.ndim != 2 or y_true.shape != y_pred.shape[:1]:
        raise ValueError(
            f"{name}: expected `y_true` [batch] and `y_pred` [batch, dim]; got y_true "
            f"{tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}."
        )
    ref_emb = y_pred if ref_embeddings is None else c.as_float(ref_embeddings).astype(y_pred.dtype)
    ref_lab = y_true if ref_labels is None else jnp.asarray(ref_labels)
    c.check_integer(name, "ref_labels", ref_lab)
    ref_lab = ref_lab.reshape(-1)
    if ref_emb.ndim != 2 or ref_emb.shape != (ref_lab.shape[0], y_pred.shape[1]):
        raise ValueError(
            f"{name}: `ref_embeddings` must be [ref, {y_pred.shape[1]}] with one `ref_labels` "
            f"entry per row; got {tuple(ref_emb.shape)} and {tuple(ref_lab.shape)}."
        )
    dist = jnp.maximum(1.0 - y_pred @ ref_emb.T, 0.0)
    positive = y_true[:, None] == ref_lab[None, :]
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~jnp.eye(y_true.shape[0], ref_lab.shape[0], dtype=bool)
    pos_w = jnp.maximum((margin + dist) * positive, 0.0)
    neg_w = jnp.maximum((1.0 + margin - dist) * negative, 0.0)
    p_loss = _masked_logsumexp(-gamma * pos_w * (margin - dist), positive, 1)
    n_loss = _masked_logsumexp(gamma * neg_w * (1.0 - margin - dist), negative, 1)
    return jax.nn.softplus(p_loss + n_loss)


class Circle(Loss, function=circle, inputs="metric_learning"):
    """Class handle of :func:`circle`.

    As in Keras, samples whose loss is 0 (no positive or no negative pair) are masked out of the
    mean reductions. Reference embeddings can be passed at call time:
    ``loss(y_true, y_pred, ref_labels=..., ref_embeddings=...)``.

    Args:
      gamma: scale of the similarity scores, > 0 (default 80).
      margin: relaxation margin (default 0.4).
      remove_diagonal: drop self-similarities from the positive pairs (default True).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> emb = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> loss = jaxloss.Circle(gamma=2.0)
      >>> print(f"{float(loss(jnp.array([0, 0, 1, 1]), emb)):.4f}")
      0.9337
    """

    gamma: float = option(80.0, c.POSITIVE)
    margin: float = option(0.4, c.FINITE)
    remove_diagonal: bool = option(True, c.BOOL)

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> jax.Array:
        # Keras' Circle: a sample without a positive or a negative pair has loss 0 and is left
        # out of the mean.
        return values > 0
