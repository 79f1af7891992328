"""Griffe extension: Sphinx roles in docstrings become cross-references to documented objects.

It also splits Google-style multi-name argument entries (``reduction, dtype: ...``) into one
entry per name, so that griffe checks each name against the signature.

Loaded by mkdocstrings (``extensions`` in ``mkdocs.yml``). A role whose target is documented on the
site becomes an autorefs link; any other becomes inline code, so a role can never produce a broken
link.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))

import site_api
import site_text as text

PUBLIC = ["jaxloss.compat.optax", "jaxloss.compat.torch", "jaxloss.keras", "jaxloss.ops", "jaxloss"]


def _context(obj: Any) -> list[str]:
    path = obj.path
    order = [p for p in PUBLIC if path == p or path.startswith(p + ".")][:1]
    order += [p for p in PUBLIC[::-1] if p not in order]
    parent = obj.parent
    if parent is not None and getattr(parent, "is_class", False):
        order = [f"{p}.{parent.name}" for p in order[:2]] + order
    return order


ARG_SECTIONS = ("Args:", "Arguments:", "Parameters:", "Keyword Args:", "Other Parameters:")
NAMES_WRAPPED = re.compile(r"^\s+\*{0,2}\w+(?:,\s*\*{0,2}\w+)*,\s*$")
MULTI_NAME = re.compile(r"^(\s+)(\*{0,2}\w+(?:,\s*\*{0,2}\w+)+):(.*)$")


def split_multi_name_params(doc: str) -> str:
    """``a, b: text`` in an Args section becomes one entry per name (Google style has none); a
    list of names may wrap onto the next line."""
    out: list[str] = []
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ARG_SECTIONS:
            in_args = True
        elif stripped.endswith(":") and stripped and not line.startswith(" "):
            in_args = False
        if in_args and out and NAMES_WRAPPED.match(out[-1]):
            line = out.pop().rstrip() + " " + stripped
        match = MULTI_NAME.match(line) if in_args else None
        if match:
            indent, names, rest = match.groups()
            out += [f"{indent}{name.strip()}:{rest}" for name in names.split(",")]
        else:
            out.append(line)
    return "\n".join(out)


def _value_doc(value: Any) -> set[str]:
    """Docstrings an inspected attribute inherits from its value (``float``'s, a function's)."""
    docs = {getattr(value, "__doc__", None), getattr(type(value), "__doc__", None)}
    return {inspect.cleandoc(d) for d in docs if isinstance(d, str)}


class Roles(griffe.Extension):
    def on_instance(self, *, node: Any, obj: Any, agent: Any, **kwargs: Any) -> None:
        # Live inspection gives an attribute its value's docstring (an option default shows
        # float's); keep only a docstring written for the attribute in the source.
        if (
            obj.is_attribute
            and obj.docstring is not None
            and hasattr(node, "obj")
            and inspect.cleandoc(obj.docstring.value) in _value_doc(node.obj)
        ):
            written = None
            if obj.parent is not None and obj.parent.is_module:
                module = sys.modules.get(obj.parent.path)
                written = module and site_api.attribute_doc(module, obj.name)
            if written:
                obj.docstring.value = inspect.cleandoc(written)
            else:
                obj.docstring = None
        if obj.docstring is None:
            return
        if obj.is_module:  # a module docstring's bare doctests are not in an Examples section
            obj.docstring.value = text.doctest_to_fence(obj.docstring.value)
        context = _context(obj)
        value = split_multi_name_params(obj.docstring.value)
        obj.docstring.value = text.convert_roles(
            value, lambda target: text.resolve(target, context)
        )
