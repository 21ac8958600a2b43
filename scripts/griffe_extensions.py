"""Griffe extensions for the documentation site (mkdocs.yml): priorsep's lazy exports, and
its reST-flavoured docstrings read as Markdown.

priorsep's packages export their public names lazily (``priorsep._lazy``): each package has
an ``_EXPORTS`` dict, ``{name: module it lives in}``, and imports the module on first
access. A static reader such as griffe sees no ``Separator`` in ``priorsep``, so the API
reference could not say ``::: priorsep.Separator``. This extension reads every package's
``_EXPORTS`` (importing a package is cheap: the lazy exports import nothing heavy), adds
each name as an alias of the object it names, and marks it exported, so that the reference
follows the names users write and keeps working when a definition moves to another module.

The docstrings are Google style with a few reST habits that Markdown does not know; the
second extension rewrites them for the site only (the sources are not touched):
``:func:`~a.b.c``` and the other roles become code (``c``; ``a.b.c`` without ``~``), and a
doctest becomes a fenced ``pycon`` block.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from griffe import Alias, Extension, Module, Object

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def _modules(module: Module):
    yield module
    for member in module.modules.values():
        if not member.is_alias:
            yield from _modules(member)


def _exports(package: str) -> dict[str, str]:
    """``package``'s ``_EXPORTS``, importing it from the installed priorsep or else from src/."""
    try:
        return importlib.import_module(package)._EXPORTS
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        return importlib.import_module(package)._EXPORTS


class LazyExports(Extension):
    """Alias every name of a priorsep package's ``_EXPORTS`` to its definition."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        if pkg.name != "priorsep":
            return
        for module in _modules(pkg):
            if "_EXPORTS" not in module.members:
                continue
            exports = _exports(module.path)
            for name, where in exports.items():
                target = importlib.util.resolve_name(where, module.path)
                if name not in module.members:
                    module.set_member(name, Alias(name, f"{target}.{name}", parent=module))
            module.exports = sorted({*(str(e) for e in module.exports or ()), *exports})


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def markdown(text: str) -> str:
    """``text`` with reST roles as code and each doctest fenced (except in an ``Examples:``
    section, which griffe reads itself)."""
    out: list[str] = []
    fence = None  # the open fence's indentation
    examples = False
    for line in ROLE.sub(_role, text).splitlines():
        stripped = line.lstrip()
        indent = line[:len(line) - len(stripped)]
        if stripped and not indent:
            examples = stripped == "Examples:"
        if fence is not None and (not stripped or not line.startswith(fence)):
            out.append(fence + "```")
            fence = None
        if fence is None and stripped.startswith(">>>") and not examples:
            fence = indent
            out.append(fence + "```pycon")
        out.append(line)
    if fence is not None:
        out.append(fence + "```")
    return "\n".join(out)


class MarkdownDocstrings(Extension):
    """Rewrite every docstring with :func:`markdown` before it is parsed."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
