"""Trace-time checks shared by every loss: one wording for every error message.

Every message names the loss, the argument, what was expected and what came, so that a user reading
only the last line of a traceback knows what to change (DESIGN.md section 4).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def _owner(loss: Any) -> str:
    """The display name of a loss given as a string, a Loss instance, or a function."""
    if isinstance(loss, str):
        return loss
    if hasattr(loss, "reduction"):
        return type(loss).__name__
    return getattr(loss, "__name__", type(loss).__name__)


def check_option(loss: Any, option: str, ok: bool, expected: str, got: Any = None) -> None:
    """Raise ``ValueError`` unless ``ok``: ``"<Loss>: `option` must be <expected>; got <value>."``.

    ``got`` defaults to the attribute ``option`` of ``loss`` when ``loss`` is a Loss instance.
    """
    if ok:
        return
    if got is None and hasattr(loss, option):
        got = getattr(loss, option)
    raise ValueError(f"{_owner(loss)}: `{option}` must be {expected}; got {got!r}.")


def check_rank(loss: Any, arg: str, x: jax.Array, min_rank: int) -> None:
    """Raise ``ValueError`` if ``x`` has fewer than ``min_rank`` dimensions."""
    if x.ndim < min_rank:
        raise ValueError(
            f"{_owner(loss)}: `{arg}` must have rank >= {min_rank}; got shape {tuple(x.shape)}."
        )


def normalize_axis(loss: Any, arg: str, axis: int, ndim: int) -> int:
    """Return ``axis`` as a non-negative index into an array of rank ``ndim``, or raise."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{_owner(loss)}: `axis` must be an int; got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{_owner(loss)}: `axis`={axis} is out of range for `{arg}` of rank {ndim}."
        )
    return int(axis) % ndim


def as_float(x: ArrayLike, dtype: Any = None) -> jax.Array:
    """``x`` as a floating array: its own float dtype, or float32 for ints, bools and scalars."""
    x = jnp.asarray(x)
    if dtype is not None:
        return x.astype(dtype)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.float32)
    return x


def check_integer(loss: Any, arg: str, x: jax.Array) -> None:
    """Raise ``TypeError`` unless ``x`` holds integer class indices."""
    if not (jnp.issubdtype(x.dtype, jnp.integer) or jnp.issubdtype(x.dtype, jnp.bool_)):
        raise TypeError(
            f"{_owner(loss)}: `{arg}` must hold integer class indices; got dtype {x.dtype}. "
            "Cast with `.astype(jnp.int32)` if the floats are whole numbers."
        )


def squeeze_or_expand_to_same_rank(
    x1: jax.Array, x2: jax.Array, expand_rank_1: bool = True
) -> tuple[jax.Array, jax.Array]:
    """Keras' rank rule: when ranks differ by one and the longer has a trailing 1, drop it.

    With ``expand_rank_1`` a rank-1 array facing a rank-2 ``[n, 1]`` array is expanded instead, so
    ``[batch]`` against ``[batch, 1]`` lines up by batch instead of broadcasting to a square.
    """
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = jnp.expand_dims(x2, -1)
        else:
            x1 = jnp.squeeze(x1, -1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = jnp.expand_dims(x1, -1)
        else:
            x2 = jnp.squeeze(x2, -1)
    return x1, x2


def match_shapes(
    loss: Any, y_true: ArrayLike, y_pred: ArrayLike, *, cast_true: bool = True
) -> tuple[jax.Array, jax.Array]:
    """Line up ``y_true`` and ``y_pred`` as Keras does, and refuse shapes that do not broadcast.

    ``y_pred`` becomes a float array (float32 if it was integer); ``y_true`` is cast to ``y_pred``'s
    dtype when ``cast_true``. The Keras squeeze/expand rule is applied, then the two shapes must
    broadcast to ``y_pred``'s shape (a ``y_true`` that would enlarge ``y_pred`` is refused too,
    since the loss would silently be computed over the wrong elements).
    """
    y_pred = as_float(y_pred)
    y_true = jnp.asarray(y_true)
    if cast_true:
        y_true = y_true.astype(y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    try:
        out = jnp.broadcast_shapes(y_true.shape, y_pred.shape)
    except ValueError:
        out = None
    if out != tuple(y_pred.shape):
        raise ValueError(
            f"{_owner(loss)}: `y_true` and `y_pred` must have the same shape (or `y_true` must "
            f"broadcast to `y_pred`); got y_true {tuple(jnp.shape(y_true))} and "
            f"y_pred {tuple(y_pred.shape)}."
        )
    return y_true, y_pred
