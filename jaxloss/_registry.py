"""The one registry: names and aliases of every loss, and ``get`` / ``serialize`` / ``deserialize``.

A class handle registers itself where it is defined, from its class header
(``class Huber(Loss, function=huber, aliases=("huber_loss",))``); this module imports nothing else
from jaxloss. Registering the same qualified class name again replaces the entry, so reloading a
family module works; a *different* loss claiming a taken name is refused.

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


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """One registered loss: its function handle, its class handle and the names it answers to.

    ``inputs`` names the kind of ``(y_true, y_pred)`` the loss takes (``"regression"``,
    ``"binary"``, ``"categorical"``, ``"sparse_categorical"``, ...); the contract test builds
    example inputs from it. ``name`` is the registered name (the function's name).
    """

    function: Callable[..., Any]
    cls: type
    aliases: tuple[str, ...]
    inputs: str

    @property
    def name(self) -> str:
        return self.function.__name__


_ENTRIES: dict[str, RegistryEntry] = {}  # qualified class name -> entry
_CLASSES: dict[str, type] = {}  # class name -> class (Loss bases and every class handle)
_FOLDED: dict[str, Callable[..., Any]] = {}  # casefolded function name or alias -> function
_FUNCTION_NAMES: dict[Callable[..., Any], str] = {}


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def register_class(cls: type) -> None:
    """Make a class resolvable by its name (the ``Loss`` bases, which have no function)."""
    other = _CLASSES.get(cls.__name__)
    if other is not None and _qualified(other) != _qualified(cls):
        raise ValueError(f"register: the class name {cls.__name__!r} is already registered.")
    _CLASSES[cls.__name__] = cls


def _unregister(key: str) -> None:
    old = _ENTRIES.pop(key, None)
    if old is None:
        return
    _CLASSES.pop(old.cls.__name__, None)
    _FUNCTION_NAMES.pop(old.function, None)
    for alias in (old.function.__name__, *old.aliases):
        if _FOLDED.get(alias.casefold()) is old.function:
            del _FOLDED[alias.casefold()]


def register(
    function: Callable[..., Any],
    cls: type,
    *,
    aliases: tuple[str, ...] = (),
    inputs: str = "regression",
) -> None:
    """Register a loss's function and class handles, plus extra names for the function.

    Raises:
      ValueError: a name is already taken by another loss.
    """
    key = _qualified(cls)
    old = _ENTRIES.get(key)
    if old is not None and _qualified(old.function) != _qualified(function):
        raise ValueError(
            f"register: {cls.__name__} is already registered with {old.function.__name__}."
        )
    for other_key, entry in _ENTRIES.items():
        if other_key != key and _qualified(entry.function) == _qualified(function):
            raise ValueError(
                f"register: {function.__name__} is already registered with {entry.cls.__name__}."
            )
    names = (function.__name__, *aliases)
    for name in names:
        owner = _FOLDED.get(name.casefold())
        if owner is not None and _qualified(owner) != _qualified(function):
            raise ValueError(f"register: the name {name!r} is already registered.")
    other = _CLASSES.get(cls.__name__)
    if other is not None and _qualified(other) != key:
        raise ValueError(f"register: the class name {cls.__name__!r} is already registered.")
    _unregister(key)
    # A reloaded module brings a new function object under the same qualified name.
    for fn in [f for f in _FUNCTION_NAMES if _qualified(f) == _qualified(function)]:
        _FUNCTION_NAMES.pop(fn)
    _CLASSES[cls.__name__] = cls
    for name in names:
        _FOLDED[name.casefold()] = function
    _FUNCTION_NAMES[function] = function.__name__
    _ENTRIES[key] = RegistryEntry(function, cls, tuple(dict.fromkeys(aliases)), inputs)


def registered() -> tuple[RegistryEntry, ...]:
    """Every registered loss, in registration order."""
    return tuple(_ENTRIES.values())


def function_name(fn: Callable[..., Any]) -> Any:
    """The registered name of ``fn``, or ``fn`` itself if it is not registered."""
    return _FUNCTION_NAMES.get(fn, fn)


def lookup(name: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """The class or function registered under ``name``.

    Raises:
      ValueError: an unknown name (the message suggests the closest registered names).
    """
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in _CLASSES:
        return _CLASSES[name]
    if name.casefold() in _FOLDED:
        return _FOLDED[name.casefold()]
    known = sorted({*_CLASSES, *_FOLDED, *(custom_objects or {})})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    close += [k for k in difflib.get_close_matches(name.casefold(), known, n=3) if k not in close]
    hint = f" Did you mean {', '.join(repr(c) for c in close[:3])}?" if close else ""
    raise ValueError(f"Unknown loss identifier {name!r}.{hint}")


def _is_loss_class(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "from_config", None))


def deserialize(config: str | dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Any:
    """Turn a name or a :func:`serialize` dict back into a loss.

    Args:
      config: a class name (an instance with default options is returned), a function name or
        alias (the function is returned), or a dict ``{"class_name": ..., "config": {...}}``
        (Keras 3's ``{"class_name": "function", "config": name}`` form is accepted too).
      custom_objects: extra ``name -> class or function`` to resolve user-defined losses.

    Raises:
      ValueError: unknown name (the message suggests the closest registered names), or a dict
        without the keys it needs.
      TypeError: ``config`` is neither a string nor a dict.
    """
    if isinstance(config, str):
        obj = lookup(config, custom_objects)
        return obj() if _is_loss_class(obj) else obj
    if isinstance(config, dict):
        class_name = config.get("class_name")
        if not isinstance(class_name, str):
            raise ValueError(f"deserialize: a config dict needs a 'class_name'; got {config!r}.")
        inner = config.get("config", {})
        if class_name == "function":
            if not isinstance(inner, str):
                raise ValueError(
                    "deserialize: a {'class_name': 'function'} dict needs the function's "
                    f"registered name under 'config'; got {config!r}."
                )
            return lookup(inner, custom_objects)
        if not isinstance(inner, dict):
            raise ValueError(
                f"deserialize: the 'config' of {class_name!r} must be a dict; got {inner!r}."
            )
        cls = lookup(class_name, custom_objects)
        if not _is_loss_class(cls):
            raise ValueError(f"deserialize: {class_name!r} is not a Loss class.")
        if class_name == "LossFunctionWrapper" or getattr(cls, "__name__", "") == (
            "LossFunctionWrapper"
        ):
            return cls.from_config(dict(inner), custom_objects=custom_objects)
        return cls.from_config(dict(inner))
    raise TypeError(f"deserialize: expected a string or a config dict; got {config!r}.")


def serialize(loss: Any) -> str | dict[str, Any]:
    """A JSON-friendly description of ``loss`` that :func:`deserialize` turns back into it.

    A loss object gives ``{"module": "jaxloss", "class_name": ..., "config": {...}}``; a
    registered function gives its name.

    Raises:
      ValueError: ``loss`` is a function that is not registered (pass it through
        ``LossFunctionWrapper`` and ``custom_objects`` instead).
    """
    if not isinstance(loss, type) and callable(getattr(loss, "get_config", None)):
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
      TypeError: anything else: ``get`` accepts None, a loss name, a config dict or a callable.
    """
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(
        "get: a loss identifier must be None, a loss name (e.g. 'mse' or 'Huber'), a config "
        f"dict from `serialize`, or a callable; got {identifier!r}."
    )
