"""The ``Loss`` base class, ``LossFunctionWrapper``, and compute-dtype handling."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxloss._reduction import reduce_weighted_values, standardize_reduction

# Keras DTypePolicy names whose compute dtype differs from their variable dtype.
_POLICY_COMPUTE_DTYPES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
_FLOAT_NAMES = ("bfloat16", "float16", "float32", "float64")


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _normalize_dtype(owner: str, dtype: Any) -> str | None:
    """A dtype, dtype name or Keras policy name, as the string stored in the config."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in _POLICY_COMPUTE_DTYPES:
        return dtype
    policy_name = getattr(dtype, "name", None)
    if isinstance(policy_name, str) and policy_name in _POLICY_COMPUTE_DTYPES:
        return policy_name  # a keras.DTypePolicy object
    try:
        name = jnp.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _FLOAT_NAMES:
        raise ValueError(
            f"{owner}: `dtype` must be None, a floating dtype ({', '.join(_FLOAT_NAMES)}) or a "
            f"Keras policy name ({', '.join(_POLICY_COMPUTE_DTYPES)}); got {dtype!r}."
        )
    return name


def _cast_floating(x: ArrayLike, dtype: jnp.dtype) -> jax.Array:
    """Cast a floating array to ``dtype``; integer and boolean arrays (labels) are left alone."""
    x = jnp.asarray(x)
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x


@dataclasses.dataclass(frozen=True, kw_only=True)
class Loss:
    """Base class of every jaxloss class handle (the Keras 3 ``keras.losses.Loss`` contract).

    A loss object is a frozen, keyword-only dataclass: hashable, equal by value, safe to close over
    in a jitted function or to pass as a static argument (an option change makes a new object, so
    the jit cache is never stale). Calling it computes the per-sample loss with :meth:`call`, then
    applies sample weights, the mask from :meth:`mask`, and the reduction.

    Subclass it and override :meth:`call` to get reductions, sample weights, dtype handling and
    cross-device reduction for free. Options of a subclass are dataclass fields; decorate the
    subclass with ``@dataclasses.dataclass(frozen=True, kw_only=True)`` when it adds any.

    Args:
      name: the loss name; defaults to the Keras name of the class (``"mean_squared_error"`` for
        ``MeanSquaredError``) or, for a user subclass, its class name in snake case.
      reduction: ``"sum_over_batch_size"`` (default), ``"mean"`` (same), ``"sum"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``, or a :class:`Reduction` member.
      dtype: compute dtype. ``None`` computes in float32 (Keras' ``floatx``), so bfloat16/float16
        inputs are upcast for the math (gradients still come back in the input dtype). A float
        dtype name, or a Keras policy name (``"mixed_bfloat16"`` computes in bfloat16).
      axis_name: ``None``, or the name (or tuple of names) of a mapped axis (``shard_map``,
        ``pmap``): every sum and count of the reduction is then taken across it, so the result
        equals the single-device result on the global batch.

    Examples:
      A user subclass that only defines ``call``:

      >>> import dataclasses, jax.numpy as jnp
      >>> import jaxloss
      >>> class MeanSquaredError(jaxloss.Loss):
      ...     def call(self, y_true, y_pred):
      ...         return jnp.mean(jnp.square(y_pred - y_true), axis=-1)
      >>> loss = MeanSquaredError(reduction="sum")
      >>> loss.name
      'mean_squared_error'
      >>> print(f"{float(loss(jnp.ones((2, 2)), jnp.zeros((2, 2)))):.1f}")
      2.0
      >>> print(f"{float(loss(jnp.ones((2, 2)), jnp.zeros((2, 2)), sample_weight=[1., 0.])):.1f}")
      1.0
    """

    name: str | None = None
    reduction: str | None = "sum_over_batch_size"
    dtype: str | None = None
    axis_name: str | tuple[str, ...] | None = None

    default_name: ClassVar[str | None] = None
    # The function handle this class wraps (set with `staticmethod(fn)`): the default `call`
    # passes it every option field, so a class handle only declares its options.
    function: ClassVar[Callable[..., Any] | None] = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.name is None:
            object.__setattr__(self, "name", self.default_name or _snake_case(owner))
        elif not isinstance(self.name, str):
            raise TypeError(f"{owner}: `name` must be a string; got {self.name!r}.")
        object.__setattr__(self, "reduction", standardize_reduction(self.reduction, owner))
        object.__setattr__(self, "dtype", _normalize_dtype(owner, self.dtype))
        axis_name = self.axis_name
        if isinstance(axis_name, list):
            axis_name = tuple(axis_name)
            object.__setattr__(self, "axis_name", axis_name)
        if not (
            axis_name is None
            or isinstance(axis_name, str)
            or (isinstance(axis_name, tuple) and all(isinstance(a, str) for a in axis_name))
        ):
            raise TypeError(
                f"{owner}: `axis_name` must be None, a string or a tuple of strings; "
                f"got {axis_name!r}."
            )

    @property
    def compute_dtype(self) -> jnp.dtype:
        """The dtype the loss is computed in (float32 unless ``dtype`` says otherwise)."""
        name = _POLICY_COMPUTE_DTYPES.get(self.dtype, self.dtype) or "float32"
        return jnp.dtype(name)

    def call(self, y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
        """The per-sample loss, shape ``[batch, d0, .. dN-1]``; override in subclasses.

        The default calls the class's ``function`` with every option field (the dataclass fields
        beyond those of :class:`Loss`) as keyword arguments.
        """
        if self.function is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a Loss subclass must implement call(y_true, y_pred)."
            )
        return self.function(y_true, y_pred, **self.options())

    def options(self) -> dict[str, Any]:
        """The loss-specific options: every constructor argument beyond those of :class:`Loss`."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.init and f.name not in _BASE_FIELDS
        }

    def mask(self, y_true: jax.Array, y_pred: jax.Array) -> jax.Array | None:
        """Boolean validity of each per-sample loss element, or ``None`` (all valid).

        Masked-out elements contribute 0 and the mean reductions divide by the valid count only.
        """
        del y_true, y_pred
        return None

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> jax.Array:
        """The reduced loss: a scalar, or the weighted per-sample losses for ``"none"``."""
        dtype = self.compute_dtype
        y_true, y_pred = self.cast_inputs(y_true, y_pred)
        values = jnp.asarray(self.call(y_true, y_pred))
        if jnp.issubdtype(values.dtype, jnp.floating) and values.dtype != dtype:
            values = values.astype(dtype)
        return reduce_weighted_values(
            values,
            sample_weight=sample_weight,
            mask=self.mask(y_true, y_pred),
            reduction=self.reduction,
            axis_name=self.axis_name,
            loss_name=type(self).__name__,
        )

    def cast_inputs(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        """Floating leaves of ``y_true`` and ``y_pred`` (arrays or pytrees) in the compute dtype.

        Integer and boolean leaves (labels) are left alone. Override to change how inputs enter
        the loss (e.g. to keep low-precision operands whose kernel accumulates in float32).
        """
        dtype = self.compute_dtype
        cast = lambda x: _cast_floating(x, dtype)
        return jax.tree.map(cast, y_true), jax.tree.map(cast, y_pred)

    def get_config(self) -> dict[str, Any]:
        """Every constructor argument, so that ``type(loss).from_config(config) == loss``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuild a loss from :meth:`get_config`'s output."""
        return cls(**config)


_BASE_FIELDS = frozenset(f.name for f in dataclasses.fields(Loss))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True, init=False)
class LossFunctionWrapper(Loss):
    """Give any ``fn(y_true, y_pred, **kwargs) -> per-sample losses`` the class-handle behaviour.

    Args:
      fn: a callable returning per-sample (unreduced) losses, or the registered name of one.
      name: defaults to ``fn.__name__``.
      reduction, dtype, axis_name: as for :class:`Loss`.
      **kwargs: extra keyword arguments passed to ``fn`` on every call (stored as a sorted tuple of
        items so that the object stays hashable; lists become tuples).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> def l1(y_true, y_pred, scale=1.0):
      ...     return scale * jnp.sum(jnp.abs(y_pred - y_true), axis=-1)
      >>> loss = jaxloss.LossFunctionWrapper(l1, scale=0.5)
      >>> print(f"{float(loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), sample_weight=[1., 3.])):.2f}")
      3.00
    """

    fn: Callable[..., Any] | None = None
    fn_kwargs: tuple[tuple[str, Any], ...] = ()

    def __init__(
        self,
        fn: Callable[..., Any] | str,
        *,
        name: str | None = None,
        reduction: Any = "sum_over_batch_size",
        dtype: Any = None,
        axis_name: str | tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(fn, str):
            from jaxloss._registry import get  # deferred: the registry imports this module

            fn = get(fn)
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper: `fn` must be callable; got {fn!r}.")
        set_ = object.__setattr__
        set_(self, "fn", fn)
        set_(self, "fn_kwargs", tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))
        set_(self, "name", name if name is not None else getattr(fn, "__name__", "loss"))
        set_(self, "reduction", reduction)
        set_(self, "dtype", dtype)
        set_(self, "axis_name", axis_name)
        self.__post_init__()

    def call(self, y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
        return self.fn(y_true, y_pred, **dict(self.fn_kwargs))

    def get_config(self) -> dict[str, Any]:
        from jaxloss._registry import function_name  # deferred: the registry imports this module

        return {
            "fn": function_name(self.fn),
            "name": self.name,
            "reduction": self.reduction,
            "dtype": self.dtype,
            "axis_name": self.axis_name,
            **dict(self.fn_kwargs),
        }
