"""The one implementation of reductions, sample weights and masks used by every jaxloss class.

Semantics are Keras 3's (``keras.losses.Loss``):

* ``"sum_over_batch_size"`` (default) and ``"mean"``: the weighted sum divided by the *number of
  per-sample loss elements* (zero-weighted elements count), or by the number of *valid* elements
  when the loss carries a mask (e.g. ``ignore_class``).
* ``"sum"``: the weighted sum.
* ``"mean_with_sample_weight"``: the weighted sum divided by the sum of the (broadcast) weights.
* ``"none"`` / ``None``: the weighted per-sample losses, unreduced.

Every division is safe: a zero divisor gives 0, never NaN. With ``axis_name`` every sum and every
count is also summed across the named mapped axis (``lax.psum``), so that inside ``shard_map`` or
``pmap`` the result equals the single-device result on the global batch.

Two deliberate departures from Keras 3.15, both documented in the README:

* A ``[batch]`` sample weight against a ``[batch, T, ...]`` loss scales each sample (it is aligned
  on the leading axes), where Keras raises a broadcasting error.
* ``"mean_with_sample_weight"`` divides by the sum of the weights *as broadcast to the loss*, so a
  scalar weight gives the plain mean (Keras divides by the un-broadcast scalar).
"""

from __future__ import annotations

import enum
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxloss._checks import squeeze_or_expand_to_same_rank

AxisName = str | tuple[str, ...] | None


class Reduction(enum.StrEnum):
    """Reduction names, including the tf.keras ``ReductionV2`` spellings.

    Members compare equal to their string values (``Reduction.SUM == "sum"``); ``AUTO`` means
    ``SUM_OVER_BATCH_SIZE``, as in tf.keras.
    """

    AUTO = "auto"
    NONE = "none"
    SUM = "sum"
    SUM_OVER_BATCH_SIZE = "sum_over_batch_size"
    MEAN = "mean"
    MEAN_WITH_SAMPLE_WEIGHT = "mean_with_sample_weight"

    @classmethod
    def all(cls) -> tuple[str, ...]:
        """Every accepted reduction string."""
        return tuple(member.value for member in cls)

    @classmethod
    def validate(cls, key: Any) -> None:
        """Raise ``ValueError`` if ``key`` is not a valid reduction."""
        standardize_reduction(key)


def standardize_reduction(reduction: Any, loss_name: str = "Loss") -> str:
    """The canonical string for ``reduction`` (``None`` -> ``"none"``, ``AUTO`` -> the default)."""
    if reduction is None:
        return "none"
    if isinstance(reduction, Reduction):
        reduction = reduction.value
    if isinstance(reduction, str) and reduction in Reduction.all():
        return "sum_over_batch_size" if reduction == "auto" else reduction
    allowed = ", ".join(repr(r) for r in Reduction.all() if r != "auto")
    raise ValueError(
        f"{loss_name}: `reduction` must be one of {allowed}, None or a `Reduction` member; "
        f"got {reduction!r}."
    )


def _align(
    weight: jax.Array, values: jax.Array, what: str, loss_name: str
) -> tuple[jax.Array, jax.Array]:
    """Line ``weight`` up with ``values``; the weight may never enlarge the per-sample loss."""
    values, weight = squeeze_or_expand_to_same_rank(values, weight)
    if 0 < weight.ndim < values.ndim:
        leading = values.shape[: weight.ndim]
        if all(w in (1, v) for w, v in zip(weight.shape, leading, strict=True)):
            # A [batch] (or [batch, T]) weight scales whole samples: align it on the leading axes,
            # which is what "per-sample weight" means, rather than numpy's trailing alignment.
            weight = weight.reshape(weight.shape + (1,) * (values.ndim - weight.ndim))
    try:
        ok = jnp.broadcast_shapes(weight.shape, values.shape) == tuple(values.shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{loss_name}: `{what}` of shape {tuple(weight.shape)} cannot be broadcast to the "
            f"per-sample loss of shape {tuple(values.shape)}; expected a scalar, [batch], or a "
            "shape that broadcasts to the per-sample loss."
        )
    return weight, values


def _psum(x: jax.Array, axis_name: AxisName) -> jax.Array:
    return x if axis_name is None else lax.psum(x, axis_name)


def weighted_sums(
    values: ArrayLike,
    sample_weight: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    reduction: Any = "sum_over_batch_size",
    loss_name: str = "Loss",
    axis_name: AxisName = None,
) -> tuple[jax.Array, jax.Array]:
    """The weighted sum of ``values`` and what ``reduction`` divides it by, before dividing.

    For ``"none"`` the first element is the weighted, masked per-sample losses (nothing summed).
    The sums are taken across ``axis_name`` when it is given. Accumulated in at least float32.
    """
    reduction = standardize_reduction(reduction, loss_name)
    values = jnp.asarray(values)
    if not jnp.issubdtype(values.dtype, jnp.floating):
        values = values.astype(jnp.float32)
    weight = None
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight)
        if not (
            jnp.issubdtype(sample_weight.dtype, jnp.floating)
            or jnp.issubdtype(sample_weight.dtype, jnp.integer)
            or jnp.issubdtype(sample_weight.dtype, jnp.bool_)
        ):
            raise TypeError(
                f"{loss_name}: `sample_weight` must be real-valued; got dtype "
                f"{sample_weight.dtype}."
            )
        weight, values = _align(
            sample_weight.astype(values.dtype), values, "sample_weight", loss_name
        )
    valid = None
    if mask is not None:
        valid, values = _align(jnp.asarray(mask).astype(bool), values, "mask", loss_name)
        if weight is not None and weight.ndim > values.ndim:
            raise ValueError(f"{loss_name}: `sample_weight` and `mask` ranks are incompatible.")

    weighted = values if weight is None else values * weight
    if valid is not None:
        # `where`, not a multiply: a masked element may hold inf or NaN (e.g. an out-of-range
        # label) and must contribute exactly zero.
        weighted = jnp.where(valid, weighted, jnp.zeros((), weighted.dtype))
    acc = jnp.promote_types(values.dtype, jnp.float32)
    if reduction == "none":
        return weighted, jnp.zeros((), acc)

    total = _psum(jnp.sum(weighted, dtype=acc), axis_name)
    if reduction == "sum":
        return total, _psum(jnp.ones((), acc), axis_name)
    if reduction == "mean_with_sample_weight" and weight is not None:
        counted = jnp.broadcast_to(weight, values.shape).astype(acc)
        if valid is not None:
            counted = jnp.where(valid, counted, 0)
        divisor = jnp.sum(counted)
    elif valid is not None:
        divisor = jnp.sum(jnp.broadcast_to(valid, values.shape), dtype=acc)
    else:
        divisor = jnp.asarray(values.size, acc)
    return total, _psum(divisor, axis_name)


def reduce_sums(total: jax.Array, count: jax.Array, reduction: Any, dtype: Any) -> jax.Array:
    """Divide the output of :func:`weighted_sums` as ``reduction`` says; 0 for a zero count."""
    if reduction == "sum":
        return total.astype(dtype)
    safe = jnp.where(count == 0, jnp.ones_like(count), count)
    return jnp.where(count == 0, jnp.zeros_like(total), total / safe).astype(dtype)


def reduce_weighted_values(
    values: ArrayLike,
    sample_weight: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    reduction: Any = "sum_over_batch_size",
    axis_name: AxisName = None,
    loss_name: str = "Loss",
) -> jax.Array:
    """Weight, mask and reduce per-sample losses (the Keras 3 ``Loss.__call__`` tail).

    Args:
      values: per-sample losses, any shape ``[batch, d0, .. dN-1]`` (a scalar is allowed).
      sample_weight: ``None``, a scalar, ``[batch]``, or any shape that broadcasts to ``values``
        after Keras' squeeze/expand-by-one rule; a lower-rank weight aligns on the leading axes.
      mask: ``None`` or a boolean array broadcastable to ``values``; ``False`` entries contribute
        exactly 0 (even where the value is inf/NaN) and are not counted by the mean reductions.
      reduction: one of :class:`Reduction` (or its string), or ``None``.
      axis_name: a mapped axis name (or tuple of names): sums and counts are ``psum``-ed across it.
      loss_name: used in error messages.

    Returns:
      A scalar, or for ``"none"`` the weighted losses with ``values``' shape.

    Raises:
      ValueError: unknown ``reduction``; ``sample_weight`` or ``mask`` that cannot broadcast.
    """
    reduction = standardize_reduction(reduction, loss_name)
    values = jnp.asarray(values)
    dtype = values.dtype if jnp.issubdtype(values.dtype, jnp.floating) else jnp.float32
    total, count = weighted_sums(values, sample_weight, mask, reduction, loss_name, axis_name)
    if reduction == "none":
        return total
    return reduce_sums(total, count, reduction, dtype)
