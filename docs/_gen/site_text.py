"""Docstring text helpers shared by the page generators and the griffe extension.

The library's docstrings use Sphinx roles (``:func:`huber```); MkDocs renders Markdown, so each
role becomes an autorefs cross-reference when its target is documented on the site, and plain
code otherwise (a link to an undocumented target would be a broken link, which fails the build).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# Documented identifier -> page, filled by the hooks before mkdocstrings collects any object.
KNOWN: dict[str, str] = {}

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc):`(~?)([^`]+)`")


def convert_roles(text: str, resolve: Callable[[str], str | None]) -> str:
    """Replace Sphinx roles by Markdown: ``[`name`][identifier]`` or ``` `name` ```."""

    def sub(match: re.Match[str]) -> str:
        tilde, target = match.groups()
        target = target.strip().rstrip("()")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        identifier = resolve(target)
        return f"[`{shown}`][{identifier}]" if identifier else f"`{shown}`"

    return ROLE.sub(sub, text)


def candidates(target: str, context: Iterable[str]) -> list[str]:
    """Identifiers a role target may mean, most specific first (the object's own namespaces)."""
    if target.startswith("jaxloss"):
        return [target]
    return [f"{prefix}.{target}" for prefix in context]


def doctest_to_fence(text: str) -> str:
    """Turn bare ``>>>`` blocks of a module docstring into fenced ``pycon`` blocks."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            indent = len(line) - len(line.lstrip())
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][indent:])
                i += 1
            out += ["```pycon", *block, "```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def resolve(target: str, context: list[str]) -> str | None:
    """The documented identifier a docstring's role target refers to, or ``None``."""
    for identifier in candidates(target, context):
        if identifier in KNOWN:
            return identifier
    return None


BAD_VALUES = re.compile(r"^\s*Bad values:\s*(.*?)(?:\n\s*\n|\Z)", re.S | re.M)


def bad_values(doc: str | None) -> str | None:
    """The ``Bad values:`` paragraph of a loss's docstring (its Notes), joined on one line."""
    match = BAD_VALUES.search(doc or "")
    return " ".join(match.group(1).split()) if match else None
