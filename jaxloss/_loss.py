"""The ``Loss`` base class: option declaration, self-registration, hooks and reductions.

A class handle is declared in one statement; the class header carries what the registry needs and
each option is declared once, with its check::

    class Huber(Loss, function=huber, aliases=("huber_loss",)):
        delta: float = option(1.0, POSITIVE)

``Loss.__init_subclass__`` turns every subclass into a frozen dataclass (no decorator needed),
makes it a static pytree (a loss object passes through ``jit``, ``vmap``, ``grad`` and ``lax.scan``
as an ordinary argument; equal losses share a compilation, different ones retrace), and registers
it when it names its ``function``. User subclasses get the same treatment, including Keras-style
subclasses that set attributes in ``__init__``: those attributes take part in equality, hashing and
the config, and must be hashable.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any, ClassVar, dataclass_transform

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxloss import _checks as c
from jaxloss import _registry
from jaxloss._reduction import reduce_sums, standardize_reduction, weighted_sums

# Keras DTypePolicy names whose compute dtype differs from their variable dtype.
_POLICY_COMPUTE_DTYPES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
_FLOAT_NAMES = ("bfloat16", "float16", "float32", "float64")
# Keras' constructor order after the loss-specific options.
_KERAS_TAIL = ("reduction", "name", "dtype")
_INITIALIZING = "_jaxloss_initializing"


def option(*, default: Any, check: c.Check | None = None) -> Any:
    """Declare an option field of a class handle, with the check its function handle also uses."""
    return dataclasses.field(default=default, metadata={"check": check})


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


def _cast_floating(x: Any, dtype: Any) -> Any:
    """Cast a floating array to ``dtype``; integer and boolean arrays (labels) are left alone."""
    if x is None:
        return None
    x = c.as_input_array(None, None, x)
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x


def _frozen_value(owner: str, attribute: str, value: Any) -> Any:
    """An attribute set in a user ``__init__``, made hashable (lists become tuples) or refused."""
    if isinstance(value, list):
        value = tuple(_frozen_value(owner, attribute, v) for v in value)
    elif isinstance(value, (np.generic,)):
        value = value.item()
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"{owner}: the attribute `{attribute}` set in `__init__` must be hashable (a number, "
            f"string, tuple or None) so that two losses computing different things never compare "
            f"equal under jit; got a {type(value).__name__}. Declare it as an annotated field or "
            "store a tuple."
        ) from None
    return value


@dataclasses.dataclass(frozen=True)
class LossSums:
    """Partial sums of a loss: add them across micro-batches and devices, then read ``.value``.

    ``total`` is the (weighted, masked) sum of the per-sample losses and ``count`` what the loss's
    reduction divides by (elements, valid elements or the weight sum); for a batch-statistic loss
    (``Dice(axis=None)``) ``total`` holds the statistics and ``count`` is unused. ``.value``
    divides safely: a zero count gives 0, never NaN.
    """

    total: Any
    count: jax.Array
    loss: Any = dataclasses.field(metadata={"static": True})
    kind: str = dataclasses.field(default="mean", metadata={"static": True})

    @property
    def value(self) -> jax.Array:
        """The loss these sums stand for, as the class would return it on the whole batch."""
        if self.kind == "statistics":
            return self.loss.from_statistics(self.total)
        if self.kind == "sum":
            return self.total
        safe = jnp.where(self.count == 0, jnp.ones_like(self.count), self.count)
        return jnp.where(self.count == 0, jnp.zeros_like(self.total), self.total / safe)

    def __add__(self, other: LossSums) -> LossSums:
        if not isinstance(other, LossSums) or (other.loss, other.kind) != (self.loss, self.kind):
            raise TypeError(
                f"LossSums: can only add the partial sums of the same loss; got {other!r}."
            )
        return jax.tree.map(jnp.add, self, other)


jax.tree_util.register_dataclass(
    LossSums, data_fields=["total", "count"], meta_fields=["loss", "kind"]
)


@dataclass_transform(frozen_default=True, field_specifiers=(option, dataclasses.field))
@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Loss:
    """Base class of every jaxloss class handle (the Keras 3 ``keras.losses.Loss`` contract).

    A loss object is a frozen dataclass: hashable, equal by value, and a static pytree, so it can
    be passed to a jitted, vmapped or scanned function as an ordinary argument, closed over, or
    stored on a Flax NNX or Equinox module (an option change makes a new object and a retrace).
    Calling it computes the per-sample loss with :meth:`call`, then applies sample weights, the
    mask from :meth:`mask`, and the reduction.

    Subclass it and override :meth:`call` to get reductions, sample weights, dtype handling and
    cross-device reduction for free. New options are plain annotated fields (no decorator). A
    Keras-style subclass may instead set attributes in ``__init__``: they then count in equality,
    hashing and :meth:`get_config`, and must be hashable (else ``TypeError`` at construction).

    Args:
      reduction: ``"sum_over_batch_size"`` (default), ``"mean"`` (same), ``"sum"``,
        ``"mean_with_sample_weight"``, ``"none"`` or ``None``, or a :class:`Reduction` member.
      name: the loss name; defaults to the registered name of the class (``"mean_squared_error"``
        for ``MeanSquaredError``) or, for a user subclass, its class name in snake case.
      dtype: compute dtype. ``None`` computes in float32 (Keras' ``floatx``), so bfloat16/float16
        inputs are upcast for the math (gradients still come back in the input dtype). A float
        dtype name, or a Keras policy name (``"mixed_bfloat16"`` computes in bfloat16).
      axis_name: ``None``, or the name (or tuple of names) of a mapped axis (``shard_map``,
        ``pmap``): every sum and count of the reduction is then taken across it, so the result
        equals the single-device result on the global batch.

    Examples:
      A user subclass that only defines ``call``, and one that adds an option:

      >>> import jax.numpy as jnp
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
      >>> class Scaled(jaxloss.Loss):
      ...     scale: float = 1.0
      ...     def call(self, y_true, y_pred):
      ...         return self.scale * jnp.mean(jnp.abs(y_pred - y_true), axis=-1)
      >>> Scaled(scale=2.0) == Scaled(scale=2.0), Scaled(scale=2.0) == Scaled(scale=3.0)
      (True, False)
      >>> Scaled.from_config(Scaled(2.0).get_config()) == Scaled(2.0)
      True
    """

    name: str | None = None
    reduction: str | None = "sum_over_batch_size"
    dtype: str | None = None
    axis_name: str | tuple[str, ...] | None = None

    # The function handle this class wraps; set by the class header `function=...`.
    function: ClassVar[Callable[..., Any] | None] = None
    _default_name: ClassVar[str | None] = None

    def __init_subclass__(
        cls,
        *,
        function: Callable[..., Any] | None = None,
        aliases: tuple[str, ...] = (),
        inputs: str = "regression",
        default_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        user_init = "__init__" in cls.__dict__
        dataclasses.dataclass(frozen=True, kw_only=True, eq=False)(cls)
        # One immutability rule for all subclasses (Loss.__setattr__), so that a user may still
        # decorate a subclass with @dataclasses.dataclass(frozen=True) as older docs showed.
        for method in ("__setattr__", "__delattr__"):
            if method in cls.__dict__:
                delattr(cls, method)
        init = _wrap_init(cls, cls.__dict__["__init__"], positional=not user_init)
        cls.__init__ = init  # type: ignore[method-assign]
        jax.tree_util.register_static(cls)
        cls._default_name = default_name
        if function is not None:
            cls.function = staticmethod(function)
            name = default_name or function.__name__
            cls._default_name = name
            extra = (name,) if name != function.__name__ else ()
            _registry.register(function, cls, aliases=(*aliases, *extra), inputs=inputs)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        set_ = object.__setattr__
        if self.name is None:
            set_(self, "name", type(self).__dict__.get("_default_name") or _snake_case(owner))
        elif not isinstance(self.name, str):
            raise TypeError(f"{owner}: `name` must be a string; got {self.name!r}.")
        set_(self, "reduction", standardize_reduction(self.reduction, owner))
        set_(self, "dtype", _normalize_dtype(owner, self.dtype))
        axis_name = self.axis_name
        if isinstance(axis_name, list):
            axis_name = tuple(axis_name)
            set_(self, "axis_name", axis_name)
        if not (
            axis_name is None
            or isinstance(axis_name, str)
            or (isinstance(axis_name, tuple) and all(isinstance(a, str) for a in axis_name))
        ):
            raise TypeError(
                f"{owner}: `axis_name` must be None, a string or a tuple of strings; "
                f"got {axis_name!r}."
            )
        for field in dataclasses.fields(self):
            check = field.metadata.get("check")
            if check is not None:
                value = c.check_option(self, field.name, getattr(self, field.name), check, False)
                set_(self, field.name, value)

    def _seal(self) -> None:
        """After construction: every field and ``__init__`` attribute made hashable, or refused."""
        owner = type(self).__name__
        for key, value in list(self.__dict__.items()):
            object.__setattr__(self, key, _frozen_value(owner, key, value))

    def _extras(self) -> dict[str, Any]:
        fields = {f.name for f in dataclasses.fields(self)}
        return {k: v for k, v in self.__dict__.items() if k not in fields}

    def _state(self) -> tuple[Any, ...]:
        values = tuple(getattr(self, f.name) for f in dataclasses.fields(self))
        return values + tuple(sorted(self._extras().items()))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._state() == self._state()

    def __hash__(self) -> int:
        return hash((type(self), self._state()))

    @property
    def compute_dtype(self) -> jnp.dtype:
        """The dtype the loss is computed in (float32 unless ``dtype`` says otherwise)."""
        name = _POLICY_COMPUTE_DTYPES.get(self.dtype, self.dtype) if self.dtype else "float32"
        return jnp.dtype(name)

    # -- hooks --------------------------------------------------------------------------------

    def call(self, y_true: Any, y_pred: Any, **inputs: Any) -> jax.Array:
        """The per-sample loss, shape ``[batch, d0, .. dN-1]``; override in subclasses.

        The default calls the class's ``function`` with every option field and the call-time
        inputs as keyword arguments.
        """
        if self.function is None:
            raise NotImplementedError(
                f"{type(self).__name__}: a Loss subclass must implement call(y_true, y_pred)."
            )
        return self.function(y_true, y_pred, **self.options(), **inputs)

    def mask(self, y_true: Any, y_pred: Any, values: jax.Array, **inputs: Any) -> Any:
        """Boolean validity of each per-sample loss element, or ``None`` (all valid).

        Sees the per-sample ``values`` and the call-time inputs. Masked-out elements contribute
        exactly 0 and the mean reductions divide by the valid count only.
        """
        del y_true, y_pred, values, inputs
        return None

    def statistics(self, y_true: Any, y_pred: Any, sample_weight: Any = None, **inputs: Any) -> Any:
        """For a loss that is one ratio over the whole batch: the sums it divides, else ``None``.

        When this returns a pytree, the base class sums it across ``axis_name`` and passes it to
        :meth:`from_statistics`, so a sharded batch gives the global value.
        """
        del y_true, y_pred, sample_weight, inputs
        return None

    def from_statistics(self, statistics: Any) -> jax.Array:
        """The loss from the (globally summed) output of :meth:`statistics`."""
        raise NotImplementedError(
            f"{type(self).__name__}: statistics() returned sums but no ratio."
        )

    def cast_inputs(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        """Floating leaves of ``y_true`` and ``y_pred`` (arrays or pytrees) in the compute dtype.

        Integer and boolean leaves (labels) are left alone. Override to change how inputs enter
        the loss (e.g. to keep low-precision operands whose kernel accumulates in float32).
        """
        dtype = self.compute_dtype
        cast_true = functools.partial(self._cast_leaf, dtype=dtype, arg="y_true")
        cast_pred = functools.partial(self._cast_leaf, dtype=dtype, arg="y_pred")
        return _tree_map_inputs(cast_true, y_true), _tree_map_inputs(cast_pred, y_pred)

    def _cast_leaf(self, x: Any, dtype: Any, arg: str = "input") -> Any:
        x = c.as_input_array(type(self).__name__, arg, x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    def options(self) -> dict[str, Any]:
        """The loss-specific options: every constructor argument beyond those of :class:`Loss`."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.init and f.name not in _BASE_FIELDS
        }

    # -- calling ------------------------------------------------------------------------------

    def _sums(
        self, y_true: Any, y_pred: Any, sample_weight: Any, inputs: dict[str, Any], reduction: str
    ) -> LossSums:
        dtype = self.compute_dtype
        y_true, y_pred = self.cast_inputs(y_true, y_pred)
        cast = functools.partial(self._cast_leaf, dtype=dtype)
        inputs = {
            k: None if v is None else jax.tree.map(functools.partial(cast, arg=k), v)
            for k, v in inputs.items()
        }
        stats = self.statistics(y_true, y_pred, sample_weight, **inputs)
        if stats is not None:
            if self.axis_name is not None:
                stats = jax.tree.map(lambda s: lax.psum(s, self.axis_name), stats)
            return LossSums(stats, jnp.zeros((), dtype), self, "statistics")
        values = jnp.asarray(self.call(y_true, y_pred, **inputs))
        if jnp.issubdtype(values.dtype, jnp.floating) and values.dtype != dtype:
            values = values.astype(dtype)
        mask = self.mask(y_true, y_pred, values, **inputs)
        total, count = weighted_sums(
            values, sample_weight, mask, reduction, type(self).__name__, self.axis_name
        )
        return LossSums(total, count, self, "sum" if reduction == "sum" else "mean")

    def __call__(
        self,
        y_true: ArrayLike,
        y_pred: Any,
        sample_weight: ArrayLike | None = None,
        **inputs: Any,
    ) -> jax.Array:
        """The reduced loss: a scalar, or the weighted per-sample losses for ``"none"``.

        Keyword arguments beyond ``sample_weight`` are call-time inputs of the loss (lengths,
        reference embeddings, ...), passed to :meth:`call` and the hooks.
        """
        if self.reduction == "none":
            sums = self._sums(y_true, y_pred, sample_weight, inputs, "none")
            return sums.value if sums.kind == "statistics" else sums.total
        sums = self._sums(y_true, y_pred, sample_weight, inputs, self.reduction)  # type: ignore[arg-type]
        if sums.kind == "statistics":
            return sums.value
        return reduce_sums(sums.total, sums.count, self.reduction, self.compute_dtype)

    def partial(
        self,
        y_true: ArrayLike,
        y_pred: Any,
        sample_weight: ArrayLike | None = None,
        **inputs: Any,
    ) -> LossSums:
        """The loss's partial sums on this (micro-)batch, for exact gradient accumulation.

        ``sum(loss.partial(...) for each micro-batch).value`` equals the loss on the whole batch,
        also when micro-batches hold different numbers of valid elements; and the gradient of the
        whole-batch loss is the sum of the micro-batch gradients of ``.total`` divided by the
        summed ``.count``.

        Raises:
          ValueError: the loss's reduction is ``"none"`` (there is nothing to sum).
        """
        if self.reduction == "none":
            raise ValueError(
                f"{type(self).__name__}: `reduction` must reduce for partial sums; got 'none'."
            )
        return self._sums(y_true, y_pred, sample_weight, inputs, self.reduction)  # type: ignore[arg-type]

    # -- config -------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Every constructor argument, so that ``type(loss).from_config(config) == loss``."""
        config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        config.update({k: v for k, v in self._extras().items() if not k.startswith("_")})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuild a loss from :meth:`get_config`'s output."""
        return cls(**config)


def _tree_map_inputs(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``jax.tree.map`` that also sends ``None`` and strings to ``fn`` (so they are refused)."""
    if tree is None or isinstance(tree, (str, bytes)):
        return fn(tree)
    return jax.tree.map(fn, tree)


def _wrap_init(cls: type, init: Callable[..., None], *, positional: bool) -> Callable[..., None]:
    """Seal the object after the outermost ``__init__``; map Keras' positional order."""
    options = [
        f.name for f in dataclasses.fields(cls) if f.init and f.name not in _BASE_FIELDS_NAMES
    ]
    order = (*options, *_KERAS_TAIL) if positional else ()

    @functools.wraps(init)
    def __init__(self: Loss, *args: Any, **kwargs: Any) -> None:
        if positional and args:
            if len(args) > len(order):
                raise TypeError(
                    f"{cls.__name__}: takes at most {len(order)} positional arguments "
                    f"({', '.join(order)}); got {len(args)}."
                )
            for key, value in zip(order, args, strict=False):
                if key in kwargs:
                    raise TypeError(f"{cls.__name__}: got multiple values for `{key}`.")
                kwargs[key] = value
            args = ()
        outer = _INITIALIZING not in self.__dict__
        if outer:
            object.__setattr__(self, _INITIALIZING, True)
        try:
            init(self, *args, **kwargs)
        finally:
            if outer:
                object.__delattr__(self, _INITIALIZING)
        if outer:
            self._seal()

    return __init__


_BASE_FIELDS_NAMES = ("name", "reduction", "dtype", "axis_name")
_BASE_FIELDS = frozenset(_BASE_FIELDS_NAMES)


def _guarded_setattr(self: Any, name: str, value: Any) -> None:
    if self.__dict__.get(_INITIALIZING):
        object.__setattr__(self, name, value)
        return
    raise dataclasses.FrozenInstanceError(
        f"{type(self).__name__}: loss objects are immutable; cannot assign `{name}`. "
        "Use dataclasses.replace(loss, ...) for a loss with other options."
    )


def _guarded_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(
        f"{type(self).__name__}: loss objects are immutable; cannot delete `{name}`."
    )


Loss.__setattr__ = _guarded_setattr  # type: ignore[method-assign]
Loss.__delattr__ = _guarded_delattr  # type: ignore[method-assign]
Loss.__init__ = _wrap_init(Loss, Loss.__dict__["__init__"], positional=True)  # type: ignore[method-assign]
jax.tree_util.register_static(Loss)
_registry.register_class(Loss)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class LossFunctionWrapper(Loss):
    """Give any ``fn(y_true, y_pred, **kwargs) -> per-sample losses`` the class-handle behaviour.

    Args:
      fn: a callable returning per-sample (unreduced) losses, or the registered name of one.
      reduction, name, dtype, axis_name: as for :class:`Loss`; ``name`` defaults to
        ``fn.__name__``.
      **kwargs: extra keyword arguments passed to ``fn`` on every call (stored as a sorted tuple of
        items so that the object stays hashable; lists become tuples).

    ``serialize`` gives ``fn`` by name: a registered loss function by its registered name, a user
    function by its ``__name__``, to be resolved by ``deserialize(..., custom_objects={name: fn})``.

    Examples:
      >>> import json, jax.numpy as jnp
      >>> import jaxloss
      >>> def l1(y_true, y_pred, scale=1.0):
      ...     return scale * jnp.sum(jnp.abs(y_pred - y_true), axis=-1)
      >>> loss = jaxloss.LossFunctionWrapper(l1, scale=0.5)
      >>> print(f"{float(loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), sample_weight=[1., 3.])):.2f}")
      3.00
      >>> text = json.dumps(jaxloss.serialize(loss))
      >>> jaxloss.deserialize(json.loads(text), custom_objects={"l1": l1}) == loss
      True
    """

    fn: Callable[..., Any] | None = None
    fn_kwargs: tuple[tuple[str, Any], ...] = ()

    def __init__(
        self,
        fn: Callable[..., Any] | str,
        reduction: Any = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
        *,
        axis_name: str | tuple[str, ...] | None = None,
        custom_objects: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(fn, str):
            fn = _registry.lookup(fn, custom_objects)
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

    def call(self, y_true: Any, y_pred: Any, **inputs: Any) -> jax.Array:
        return self.fn(y_true, y_pred, **dict(self.fn_kwargs), **inputs)  # type: ignore[misc]

    def get_config(self) -> dict[str, Any]:
        fn_name = _registry.function_name(self.fn) if self.fn is not None else None
        if not isinstance(fn_name, str):
            fn_name = getattr(self.fn, "__name__", None)
        return {
            "fn": fn_name,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
            "axis_name": self.axis_name,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in self.fn_kwargs},
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Loss:
        config = dict(config)
        axis_name = config.pop("axis_name", None)
        if isinstance(axis_name, list):
            axis_name = tuple(axis_name)
        return cls(config.pop("fn"), axis_name=axis_name, custom_objects=custom_objects, **config)


_registry.register_class(LossFunctionWrapper)
