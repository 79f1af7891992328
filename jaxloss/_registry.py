"""The one registry: names and aliases of every loss, and ``get`` / ``serialize`` / ``deserialize``.

Each family module registers each of its losses with one line at its bottom::

    register(mean_squared_error, MeanSquaredError, aliases=("mse", "MSE"), inputs="regression")

Lookup rules (``get`` / ``deserialize`` of a string):

1. ``custom_objects`` (exact name), then registered class names and function names (exact).
2. Function names and aliases, case-insensitively (``"MSE"``, ``"Mse"``, ``"mse"``). Class names
   are matched exactly only, because ``"Huber"`` (class) and ``"huber"`` (function) differ.

A class name gives an instance with default options; a function name or alias gives the function,
as in Keras.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from jaxloss._loss import Loss, LossFunctionWrapper


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """One registered loss: its function handle, its class handle and the names it answers to.

    ``inputs`` names the kind of ``(y_true, y_pred)`` the loss takes (``"regression"``,
    ``"binary"``, ``"categorical"``, ``"sparse_categorical"``, ...); the contract test builds
    example inputs from it.
    """

    function: Callable[..., Any]
    cls: type[Loss]
    aliases: tuple[str, ...]
    inputs: str


_ENTRIES: list[RegistryEntry] = []
_EXACT: dict[str, Any] = {"Loss": Loss, "LossFunctionWrapper": LossFunctionWrapper}
_FOLDED: dict[str, Callable[..., Any]] = {}
_FUNCTION_NAMES: dict[Callable[..., Any], str] = {}


def register(
    function: Callable[..., Any],
    cls: type[Loss],
    *,
    aliases: tuple[str, ...] = (),
    inputs: str = "regression",
) -> None:
    """Register a loss's function and class handles, plus extra names for the function.

    Raises:
      ValueError: a name is already taken by another loss.
    """
    if function in _FUNCTION_NAMES or any(entry.cls is cls for entry in _ENTRIES):
        raise ValueError(f"register: {function.__name__} or {cls.__name__} is already registered.")
    names = {cls.__name__: cls, function.__name__: function}
    for name, obj in names.items():
        if _EXACT.get(name, obj) is not obj:
            raise ValueError(f"register: the name {name!r} is already registered.")
    for alias in (function.__name__, *aliases):
        if _FOLDED.get(alias.casefold(), function) is not function:
            raise ValueError(f"register: the alias {alias!r} is already registered.")
    _EXACT.update(names)
    for alias in (function.__name__, *aliases):
        _FOLDED[alias.casefold()] = function
    _FUNCTION_NAMES[function] = function.__name__
    _ENTRIES.append(RegistryEntry(function, cls, tuple(aliases), inputs))


def registered() -> tuple[RegistryEntry, ...]:
    """Every registered loss, in registration order."""
    return tuple(_ENTRIES)


def function_name(fn: Callable[..., Any]) -> Any:
    """The registered name of ``fn``, or ``fn`` itself if it is not registered."""
    return _FUNCTION_NAMES.get(fn, fn)


def _lookup(name: str, custom_objects: dict[str, Any] | None) -> Any:
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in _EXACT:
        return _EXACT[name]
    if name.casefold() in _FOLDED:
        return _FOLDED[name.casefold()]
    known = sorted({*_EXACT, *_FOLDED, *(custom_objects or {})})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    close += [k for k in difflib.get_close_matches(name.casefold(), known, n=3) if k not in close]
    hint = f" Did you mean {', '.join(repr(c) for c in close[:3])}?" if close else ""
    raise ValueError(f"Unknown loss identifier {name!r}.{hint}")


def deserialize(config: str | dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Any:
    """Turn a name or a :func:`serialize` dict back into a loss.

    Args:
      config: a class name (an instance with default options is returned), a function name or
        alias (the function is returned), or a dict ``{"class_name": ..., "config": {...}}``
        (Keras 3's ``{"class_name": "function", "config": name}`` form is accepted too).
      custom_objects: extra ``name -> class or function`` to resolve user-defined losses.

    Raises:
      ValueError: unknown name (the message suggests the closest registered names).
      TypeError: ``config`` is neither a string nor a dict.
    """
    if isinstance(config, str):
        obj = _lookup(config, custom_objects)
        return obj() if isinstance(obj, type) and issubclass(obj, Loss) else obj
    if isinstance(config, dict):
        class_name = config.get("class_name")
        if not isinstance(class_name, str):
            raise ValueError(f"deserialize: a config dict needs a 'class_name'; got {config!r}.")
        if class_name == "function":
            return _lookup(config["config"], custom_objects)
        cls = _lookup(class_name, custom_objects)
        if not (isinstance(cls, type) and issubclass(cls, Loss)):
            raise ValueError(f"deserialize: {class_name!r} is not a Loss class.")
        return cls.from_config(dict(config.get("config", {})))
    raise TypeError(f"deserialize: expected a string or a config dict; got {config!r}.")


def serialize(loss: Any) -> str | dict[str, Any]:
    """A JSON-friendly description of ``loss`` that :func:`deserialize` turns back into it.

    A :class:`Loss` instance gives ``{"module": "jaxloss", "class_name": ..., "config": {...}}``;
    a registered function gives its name.

    Raises:
      ValueError: ``loss`` is a function that is not registered (pass it through
        ``LossFunctionWrapper`` and ``custom_objects`` instead).
    """
    if isinstance(loss, Loss):
        return {"module": "jaxloss", "class_name": type(loss).__name__, "config": loss.get_config()}
    if callable(loss) and loss in _FUNCTION_NAMES:
        return _FUNCTION_NAMES[loss]
    raise ValueError(
        f"serialize: {loss!r} is not a jaxloss Loss or a registered loss function; "
        "a user function can be passed to deserialize through `custom_objects`."
    )


def get(identifier: Any) -> Any:
    """Retrieve a loss: ``None``, a callable, a config dict or a string identifier.

    Examples:
      >>> import jaxloss
      >>> jaxloss.get("mse") is jaxloss.mean_squared_error
      True
      >>> jaxloss.get("Huber")
      Huber(name='huber_loss', reduction='sum_over_batch_size', dtype=None, axis_name=None,
            delta=1.0)
      >>> jaxloss.get("logcosh") is jaxloss.log_cosh
      True

    Raises:
      ValueError: an unknown string identifier (with the closest names suggested).
      TypeError: anything else that is not callable.
    """
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"get: could not interpret loss identifier {identifier!r}.")
