"""The public API as the code declares it, and the checks that make the reference complete.

Every name in the ``__all__`` of a public module gets exactly one full entry on the site: the
registered losses (function and class handles) on their family's catalogue page, everything else
on the module's API page. The build fails, listing every problem at once, when

* a public module has no ``__all__``, or a name in it is not an attribute of the module;
* a documented object has no docstring of its own (a dataclass's generated ``__doc__`` does not
  count; a value needs a string literal right after its assignment);
* a public function or class defined in jaxloss is an attribute of a public module but in no
  public ``__all__`` (it would be reachable yet undocumented);
* a registered loss's function or class is not exported from ``jaxloss``.

A name bound to the same object as another name of the same ``__all__`` whose name the object
carries (``mse`` and ``mean_squared_error``) is an alias: it gets a row that points to the entry.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import itertools
import types
from typing import Any

# Public modules in site order: (import path, API page, title). The first two must exist; the
# others get a page once they exist.
MODULES = [
    ("jaxloss", "api/jaxloss.md", "jaxloss"),
    ("jaxloss.ops", "api/ops.md", "jaxloss.ops"),
    ("jaxloss.compat.optax", "api/compat-optax.md", "jaxloss.compat.optax"),
    ("jaxloss.compat.torch", "api/compat-torch.md", "jaxloss.compat.torch"),
    ("jaxloss.keras", "api/keras.md", "jaxloss.keras"),
]
REQUIRED = {"jaxloss", "jaxloss.ops"}


@dataclasses.dataclass
class Name:
    module: str
    name: str
    obj: Any
    kind: str  # "function", "class", "module", "alias", "value"
    target: str = ""  # for an alias: the canonical name in the same module
    page: str = ""  # where the full entry is rendered (set by the site builder)

    @property
    def identifier(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def summary(self) -> str:
        doc = own_doc(self.obj) or ""
        return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


@dataclasses.dataclass
class Module:
    path: str
    page: str
    title: str
    module: types.ModuleType
    names: list[Name]

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.module.__doc__ or "")


class APIError(Exception):
    """The public API is incomplete; the message lists every problem."""


def own_doc(obj: Any) -> str | None:
    """The docstring written for ``obj`` (not inherited, not a dataclass's generated one)."""
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__")
        if doc and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return None
        return doc
    doc = getattr(obj, "__doc__", None)
    if doc and isinstance(obj, (int, float, str, tuple, list, dict)):
        return None  # a value's __doc__ is its type's
    return doc


def attribute_doc(module: types.ModuleType, name: str) -> str | None:
    """The string literal right after ``name = ...`` in the module's source (PEP 257's attribute
    docstring, which mkdocstrings renders), or ``None``."""
    source = inspect.getsource(module)
    body = ast.parse(source).body
    for stmt, after in itertools.pairwise(body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            return after.value.value
    return None


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, type):
        return "class"
    if callable(obj):
        return "function"
    return "value"


def _import(path: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as err:
        if path not in REQUIRED and err.name is not None and path.startswith(err.name):
            return None  # the module (or its package) does not exist in this version
        raise


def load() -> list[Module]:
    """Import the public modules and check them; raise :class:`APIError` listing every problem."""
    problems: list[str] = []
    modules: list[Module] = []
    for path, page, title in MODULES:
        module = _import(path)
        if module is None:
            continue
        exported = getattr(module, "__all__", None)
        if exported is None:
            problems.append(f"{path} has no __all__")
            continue
        names: list[Name] = []
        for name in exported:
            if not hasattr(module, name):
                problems.append(f"{path}.__all__ lists {name!r}, which is not defined")
                continue
            names.append(Name(path, name, getattr(module, name), _kind(getattr(module, name))))
        by_name = {n.name: n for n in names}
        for n in names:
            canonical = getattr(n.obj, "__name__", None)
            if (
                n.kind in ("function", "class")
                and canonical != n.name
                and canonical in by_name
                and by_name[canonical].obj is n.obj
            ):
                n.kind, n.target = "alias", canonical
            elif n.kind in ("function", "class") and not own_doc(n.obj):
                problems.append(f"{n.identifier} has no docstring")
            elif n.kind == "value" and not attribute_doc(module, n.name):
                problems.append(
                    f"{n.identifier} has no docstring (a string literal after its assignment)"
                )
        modules.append(Module(path, page, title, module, names))
    # A public attribute that is in no __all__ is reachable but undocumented. (Re-exports of a
    # name documented elsewhere, such as jaxloss.Loss in jaxloss.keras, are fine.)
    entries = {id(n.obj) for m in modules for n in m.names}
    for m in modules:
        for name, obj in vars(m.module).items():
            if name.startswith("_") or id(obj) in entries or isinstance(obj, types.ModuleType):
                continue
            defined_in = getattr(obj, "__module__", "") or ""
            if (isinstance(obj, type) or inspect.isfunction(obj)) and defined_in.startswith(
                "jaxloss"
            ):
                problems.append(f"{m.path}.{name} is public but in no public __all__")
    if modules and modules[0].path == "jaxloss":
        from jaxloss._registry import registered

        top = {id(n.obj) for n in modules[0].names}
        for entry in registered():
            for obj in (entry.function, entry.cls):
                if id(obj) not in top:
                    problems.append(f"registered loss {obj.__name__} is not in jaxloss.__all__")
    if problems:
        raise APIError(
            "the API reference would be incomplete:\n  - " + "\n  - ".join(sorted(problems))
        )
    return modules
