"""Collectives for kernels that run inside ``jax.shard_map``: manual-axis types and vocab combines.

A leaf module (jax only). Two jobs:

* Manual-axis ("varying") bookkeeping for ``check_vma=True``: a scan carry that starts as a
  constant must be marked varying like the loop body makes it, and a hand-written cotangent must
  carry the manual-axis type of its primal (:func:`vary_like`, :func:`sum_like`).
* The vocab-parallel combine: with the class axis split over a mesh axis, each device reduces its
  own slice to per-row partial statistics, and these combine exactly across the axis: the global
  max with ``pmax``, the rescaled exp-sums and every linear statistic with ``psum``, the argmax
  with a ``pmin`` over the devices that hold the max. Each is one ``[rows]`` collective.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxloss.ops._common import finite_or_zero


def varying_axes(x: jax.Array) -> set[Any]:
    """The ``shard_map`` axes ``x`` varies over (empty outside ``shard_map``)."""
    manual = getattr(jax.typeof(x), "manual_axis_type", None)
    if manual is not None:
        return set(manual.varying)
    return set(getattr(jax.typeof(x), "vma", ()) or ())


def vary_like(x: jax.Array, *refs: jax.Array | None) -> jax.Array:
    """``x`` marked as varying over every ``shard_map`` axis that one of ``refs`` varies over.

    A scan carry or a ``lax.cond`` branch output that starts as a constant must already have the
    manual-axis type the other code gives it (inside ``shard_map``); a no-op elsewhere.
    """
    want: set[Any] = set()
    for ref in refs:
        if ref is not None:
            want |= varying_axes(ref)
    missing = tuple(sorted(want - varying_axes(x)))
    return lax.pcast(x, missing, to="varying") if missing else x


def sum_like(ct: jax.Array | None, primal: jax.Array | None) -> jax.Array | None:
    """A cotangent with the manual-axis type of its primal: ``psum`` over the extra axes.

    Inside ``shard_map`` a replicated operand meeting sharded ones gets one gradient contribution
    per device; their sum is its gradient (what autodiff's transpose of the implicit ``pvary``
    does). With the vocabulary sharded this is also how the hidden states, replicated over the
    vocab axis, get the sum of every slice's contribution. A no-op elsewhere.
    """
    if ct is None or primal is None:
        return ct
    extra = tuple(sorted(varying_axes(ct) - varying_axes(primal)))
    return lax.psum(ct, extra) if extra else ct


def axis_tuple(axis_name: Any) -> tuple[Any, ...]:
    return axis_name if isinstance(axis_name, tuple) else (axis_name,)


def vocab_slice(axis_name: Any, local_size: int) -> tuple[jax.Array | int, int]:
    """``(offset, global_size)`` of this device's slice of a class axis split over ``axis_name``.

    Slices are contiguous and equal, in mesh order (what ``PartitionSpec(..., axis_name)`` gives);
    ``(0, local_size)`` when ``axis_name`` is None.
    """
    if axis_name is None:
        return 0, local_size
    size = 1
    for a in axis_tuple(axis_name):
        size *= lax.axis_size(a)
    return lax.axis_index(axis_name) * local_size, local_size * size


def combine_max(m: jax.Array, axis_name: Any) -> jax.Array:
    return m if axis_name is None else lax.pmax(m, axis_name)


def combine_sum(x: jax.Array, axis_name: Any) -> jax.Array:
    return x if axis_name is None else lax.psum(x, axis_name)


def combine_exp_sum(m_local: jax.Array, s_local: jax.Array, m: jax.Array, axis_name: Any):
    """Global ``sum(exp(x - shift(m)))`` from each slice's sum taken with its own shift.

    A slice whose values are all ``-inf`` has ``s_local = 0`` and contributes 0 (never
    ``0 * exp(nan)``).
    """
    if axis_name is None:
        return s_local
    scale = jnp.where(
        jnp.isneginf(m_local),
        jnp.zeros((), s_local.dtype),
        jnp.exp(finite_or_zero(m_local) - finite_or_zero(m)),
    )
    return lax.psum(s_local * scale, axis_name)


def combine_argmax(
    local_max: jax.Array, local_arg: jax.Array, m: jax.Array, axis_name: Any
) -> jax.Array:
    """The global argmax (first index on ties, like ``jnp.argmax``) from each slice's argmax.

    ``local_arg`` is already a global index; ``m`` is the global max.
    """
    if axis_name is None:
        return local_arg
    big = jnp.iinfo(local_arg.dtype).max
    return lax.pmin(jnp.where(local_max == m, local_arg, big), axis_name)


def global_class_count(name: str, axis_name: Any, local_size: int) -> int:
    """The whole class count at trace time; a clear error outside a matching ``shard_map``."""
    if axis_name is None:
        return local_size
    size = 1
    try:
        for a in axis_tuple(axis_name):
            size *= lax.axis_size(a)
    except NameError:
        raise ValueError(
            f"{name}: `vocab_axis_name` must name a mesh axis of the enclosing `jax.shard_map`; "
            f"got {axis_name!r}, which is not bound here."
        ) from None
    return local_size * size
