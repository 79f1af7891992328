"""Float64 NumPy references, one per registered loss, keyed by the registered function name.

Every public module of this package defines ``REFERENCES = {"<registered name>": np_fn}`` with
``np_fn(y_true, y_pred, **options) -> per-sample float64 values`` (the shape of the function
handle's output). :data:`REFERENCES` merges them; a name claimed by two modules is an error, so two
references can never silently disagree about which one the contract test uses. Modules whose name
starts with ``_`` hold shared helpers and define no references.
"""

import importlib
import pkgutil

from tests.reference._reduce import np_reduce


def _collect():
    merged, owners = {}, {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        references = getattr(module, "REFERENCES", None)
        if not isinstance(references, dict):
            raise RuntimeError(
                f"tests/reference/{info.name}.py must define REFERENCES = {{name: np_fn}}."
            )
        for name, fn in references.items():
            if name in merged:
                raise RuntimeError(
                    f"tests/reference: {name!r} has a reference in both {owners[name]}.py and "
                    f"{info.name}.py; keep exactly one."
                )
            merged[name], owners[name] = fn, info.name
    return merged, owners


REFERENCES, OWNERS = _collect()

__all__ = ["OWNERS", "REFERENCES", "np_reduce"]
