"""Option checks and trace-time array checks, shared by every layer: one wording for every error.

Every message reads ``"<loss>: `<argument>` must be <expected>; got <value>."`` so that a user
reading only the last line of a traceback knows what to change (DESIGN.md section 5).

An option is declared once with a :class:`Check`; the function handle calls
:func:`check_option` and the class handle declares the field with ``option(default, CHECK)``, so
both accept, convert and refuse exactly the same values with the same exception type:

* a value of the wrong *kind* (a string where a number is expected, a bool where a number is
  expected, a float where an int is expected) is a ``TypeError``;
* a value of the right kind outside its range is a ``ValueError``;
* NumPy scalars are converted to Python values, so that configs stay JSON-serialisable.

A traced or concrete ``jax.Array`` is accepted unchanged by numeric checks that allow it
(``array_ok``), so function handles stay usable with option values computed under ``jit``.
"""

from __future__ import annotations

import dataclasses
import numbers
import operator
from collections.abc import Callable
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


def is_real(x: Any) -> bool:
    """A real Python or NumPy number that is not a bool."""
    return isinstance(x, (numbers.Real, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def is_int(x: Any) -> bool:
    """An integer (Python or NumPy) that is not a bool."""
    if isinstance(x, (bool, np.bool_)):
        return False
    try:
        operator.index(x)
    except TypeError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Check:
    """How one option is validated and converted.

    Args:
      kind_ok: whether the value has an acceptable kind (else ``TypeError``).
      expected: what the message says the value must be (``"a float > 0"``).
      convert: turns an accepted value into its canonical Python form (``float``, ``tuple``).
      range_ok: whether the converted value is in range (else ``ValueError``).
      array_ok: a ``jax.Array`` (possibly traced) passes through unchecked and unconverted.
    """

    kind_ok: Callable[[Any], bool]
    expected: str
    convert: Callable[[Any], Any] = lambda x: x
    range_ok: Callable[[Any], bool] | None = None
    array_ok: bool = False

    def optional(self) -> Check:
        """The same check, also accepting ``None``."""
        in_range = self.range_ok
        return Check(
            lambda x: x is None or self.kind_ok(x),
            f"None or {self.expected}",
            lambda x: None if x is None else self.convert(x),
            None if in_range is None else (lambda x: x is None or in_range(x)),
            self.array_ok,
        )


def check_option(
    loss: Any, option: str, value: Any, check: Check, array_ok: bool | None = None
) -> Any:
    """Validate ``value`` for ``option`` of ``loss`` and return its canonical form.

    ``array_ok`` overrides the check's own rule for ``jax.Array`` values (class handles pass
    ``False``: their options must be hashable Python values).

    Raises:
      TypeError: the value is of the wrong kind.
      ValueError: the value is of the right kind but out of range.
    """
    if (check.array_ok if array_ok is None else array_ok) and isinstance(value, jax.Array):
        return value
    message = f"{_owner(loss)}: `{option}` must be {check.expected}; got {value!r}."
    if not check.kind_ok(value):
        raise TypeError(message)
    try:
        converted = check.convert(value)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(message) from None
    if check.range_ok is not None and not check.range_ok(converted):
        raise ValueError(message)
    return converted


def _real_check(expected: str, in_range: Callable[[float], bool] | None) -> Check:
    return Check(is_real, expected, float, in_range, array_ok=True)


def _int_check(expected: str, in_range: Callable[[int], bool] | None = None) -> Check:
    return Check(is_int, expected, operator.index, in_range)


REAL = _real_check("a float", lambda x: not np.isnan(x))
FINITE = _real_check("a finite float", np.isfinite)
POSITIVE = _real_check("a float > 0", lambda x: x > 0)
NON_NEGATIVE = _real_check("a float >= 0", lambda x: x >= 0)
UNIT_INTERVAL = _real_check("a float in [0, 1]", lambda x: 0 <= x <= 1)
OPEN_UNIT_INTERVAL = _real_check("a float in the open interval (0, 1)", lambda x: 0 < x < 1)
BOOL = Check(lambda x: isinstance(x, (bool, np.bool_)), "True or False", bool)
INT = _int_check("an int")
NON_NEGATIVE_INT = _int_check("an int >= 0", lambda x: x >= 0)
POSITIVE_INT = _int_check("an int >= 1", lambda x: x >= 1)
OPTIONAL_INT = INT.optional()


def _is_sequence(x: Any) -> bool:
    return isinstance(x, (list, tuple, np.ndarray)) and not isinstance(x, str)


def _axes_kind(x: Any) -> bool:
    if x is None or is_int(x):
        return True
    return _is_sequence(x) and len(x) > 0 and all(is_int(a) for a in np.asarray(x).reshape(-1))


def _axes_convert(x: Any) -> int | tuple[int, ...] | None:
    if x is None or is_int(x):
        return None if x is None else operator.index(x)
    return tuple(operator.index(a) for a in np.asarray(x).reshape(-1))


AXIS = _int_check("an int")
AXES = Check(
    _axes_kind,
    "None, an int or a non-empty tuple of distinct ints",
    _axes_convert,
    lambda x: not isinstance(x, tuple) or len(set(x)) == len(x),
)


def one_of(*choices: str) -> Check:
    """A check for a string option with a fixed set of values."""
    listed = ", ".join(repr(x) for x in choices)
    return Check(lambda x: isinstance(x, str), f"one of {listed}", str, lambda x: x in choices)


def _axis_name_kind(x: Any) -> bool:
    if x is None or isinstance(x, str):
        return True
    return isinstance(x, (tuple, list)) and len(x) > 0 and all(isinstance(a, str) for a in x)


AXIS_NAME = Check(
    _axis_name_kind,
    "None, a mesh axis name or a non-empty tuple of them",
    lambda x: tuple(x) if isinstance(x, list) else x,
)


def _per_class_kind(allow_scalar: bool) -> Callable[[Any], bool]:
    def ok(x: Any) -> bool:
        if allow_scalar and is_real(x):
            return True
        if not _is_sequence(x):
            return False
        arr = np.asarray(x)
        return arr.ndim == 1 and arr.size > 0 and all(is_real(v) for v in arr.tolist())

    return ok


def _per_class_convert(x: Any) -> float | tuple[float, ...]:
    if is_real(x):
        return float(x)
    return tuple(float(v) for v in np.asarray(x, np.float64).reshape(-1))


def _all_non_negative(x: Any) -> bool:
    values = x if isinstance(x, tuple) else (x,)
    return all(np.isfinite(v) and v >= 0 for v in values)


PER_CLASS_WEIGHTS = Check(
    _per_class_kind(allow_scalar=False),
    "a non-empty 1-D sequence of finite floats >= 0, one per class",
    _per_class_convert,
    _all_non_negative,
).optional()
SCALAR_OR_PER_CLASS = Check(
    _per_class_kind(allow_scalar=True),
    "a float >= 0 or a non-empty 1-D sequence of them, one per class",
    _per_class_convert,
    _all_non_negative,
)


def check_num_classes(loss: Any, option: str, value: Any, num_classes: int) -> None:
    """A per-class option (tuple) must have exactly ``num_classes`` entries."""
    if isinstance(value, tuple) and len(value) != num_classes:
        raise ValueError(
            f"{_owner(loss)}: `{option}` must have one value per class ({num_classes}); "
            f"got {len(value)} values."
        )
    if isinstance(value, jax.Array) and value.ndim and value.shape != (num_classes,):
        raise ValueError(
            f"{_owner(loss)}: `{option}` must have one value per class ({num_classes}); "
            f"got shape {tuple(value.shape)}."
        )


def as_input_array(loss: Any, arg: str | None, x: Any) -> jax.Array:
    """``x`` as a real-valued (or integer/bool) array, or a ``TypeError`` naming the loss.

    Refuses ``None``, strings, complex numbers and other non-numeric objects, which jnp would
    either reject with an unrelated message or silently cast (complex to real).
    """
    if isinstance(x, jax.Array):
        arr = x
    else:
        bad = x is None or isinstance(x, (str, bytes, dict, set))
        arr = None
        if not bad:
            try:
                arr = jnp.asarray(x)
            except (TypeError, ValueError):
                bad = True
        if bad or arr is None:
            what = "an array of real numbers"
            raise TypeError(f"{_owner(loss)}: `{arg}` must be {what}; got {_short(x)}.")
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(
            f"{_owner(loss)}: `{arg}` must be real-valued; got a complex array of dtype "
            f"{arr.dtype}. Pass the real part or the magnitude explicitly."
        )
    if not (
        jnp.issubdtype(arr.dtype, jnp.floating)
        or jnp.issubdtype(arr.dtype, jnp.integer)
        or jnp.issubdtype(arr.dtype, jnp.bool_)
    ):
        raise TypeError(f"{_owner(loss)}: `{arg}` must be a real array; got dtype {arr.dtype}.")
    return arr


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else f"a {type(x).__name__}"


def check_rank(loss: Any, arg: str, x: jax.Array, min_rank: int) -> None:
    """Raise ``ValueError`` if ``x`` has fewer than ``min_rank`` dimensions."""
    if x.ndim < min_rank:
        hint = " (a batch axis is needed; a scalar has none)" if x.ndim == 0 else ""
        raise ValueError(
            f"{_owner(loss)}: `{arg}` must have rank >= {min_rank}{hint}; got shape "
            f"{tuple(x.shape)}."
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


def normalize_axes(loss: Any, arg: str, axes: Any, ndim: int) -> tuple[int, ...] | None:
    """``axes`` (an int, a tuple, or ``None`` for all) as sorted non-negative indices, or raise."""
    if axes is None:
        return None
    axes = (axes,) if is_int(axes) else axes
    out = []
    for axis in axes:
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"{_owner(loss)}: `axis` must name axes of `{arg}` (rank {ndim}); got {axis}."
            )
        out.append(int(axis) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{_owner(loss)}: `axis` must not repeat an axis; got {tuple(axes)}.")
    return tuple(sorted(out))


def check_classes(loss: Any, arg: str, x: jax.Array, axis: int) -> None:
    """A class axis must hold at least one class: ``ValueError`` naming the loss otherwise."""
    if x.shape[axis] == 0:
        raise ValueError(
            f"{_owner(loss)}: `{arg}` must have at least one class along axis {axis}; got shape "
            f"{tuple(x.shape)}."
        )


def as_float(x: Any, dtype: Any = None, loss: Any = None, arg: str = "y_pred") -> jax.Array:
    """``x`` as a floating array: its own float dtype, or float32 for ints, bools and scalars."""
    x = as_input_array(loss, arg, x)
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
    loss: Any,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    cast_true: bool = True,
    min_rank: int = 1,
    broadcast: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Line up ``y_true`` and ``y_pred`` as Keras does, and refuse shapes that do not broadcast.

    ``y_pred`` becomes a float array (float32 if it was integer); ``y_true`` is cast to ``y_pred``'s
    dtype when ``cast_true``. The Keras squeeze/expand rule is applied, then the two shapes must
    broadcast to ``y_pred``'s shape (a ``y_true`` that would enlarge ``y_pred`` is refused too,
    since the loss would silently be computed over the wrong elements).
    """
    y_pred = as_float(y_pred, loss=loss, arg="y_pred")
    y_true = as_input_array(loss, "y_true", y_true)
    check_rank(loss, "y_pred", y_pred, min_rank)
    if cast_true:
        y_true = y_true.astype(y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    try:
        out = jnp.broadcast_shapes(y_true.shape, y_pred.shape)
    except ValueError:
        out = None
    if out != tuple(y_pred.shape) or (not broadcast and y_true.shape != y_pred.shape):
        rule = "" if not broadcast else " (or `y_true` must broadcast to `y_pred`)"
        raise ValueError(
            f"{_owner(loss)}: `y_true` and `y_pred` must have the same shape{rule}; got y_true "
            f"{tuple(jnp.shape(y_true))} and y_pred {tuple(y_pred.shape)}."
        )
    return y_true, y_pred
