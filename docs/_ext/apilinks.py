"""Resolve references to refopt objects written with the path of their defining module.

The API reference documents each public object once, under the name its package exports
(``refopt.FloatFormat``, ``refopt.optim.adam``). Docstrings and pages may also name an
object by the module that defines it (``refopt.formats.FloatFormat``,
``refopt.optim.adam.adam``). Without help, nitpicky mode reports those as unresolved.

The ``refopt-constants`` directive documents the data constants a package exports through
``__all__`` (autodoc documents a module's data only when the module itself carries the
``#:`` comment, which a re-exporting package does not): each constant is documented
where it is defined, with that module's comment, and noted as re-exported.

NamedTuple field properties ("Alias for field number 0") are left out of the API pages; the
classes' numpydoc ``Attributes`` sections document the fields.

This extension also handles Sphinx's ``missing-reference`` event for the Python domain: when the
target imports to the *same object* as a documented name, the reference links to that
entry. A reference to an undocumented submodule of a documented package (``:mod:`` of
``refopt.experiments.cells``) links to the package's page. Anything else stays unresolved
and is reported as usual, so misspelt names still fail the build.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import inspect
import sys

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

_SCALARS = (int, float, complex, str, bytes, bool, type(None))


def _import(path: str) -> Any:
    """The object named by a dotted path, or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # not a module (or broken): try a shorter prefix
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _documented(env: Any) -> dict[int, tuple[str, Any]]:
    """id(object) -> (documented name, domain entry), built once per build."""
    cache = getattr(env, "_refopt_api_ids", None)
    if cache is not None:
        return cache
    cache = {}
    for name, entry in env.domains["py"].objects.items():
        if not name.startswith("refopt"):
            continue
        obj = _import(name)
        if obj is None or isinstance(obj, _SCALARS):
            continue
        cache.setdefault(id(obj), (name, entry))
    env._refopt_api_ids = cache
    return cache


def resolve(app: Sphinx, env: Any, node: nodes.Element, contnode: nodes.Element):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = [target]
    module = node.get("py:module")
    if module and not target.startswith("refopt"):
        candidates.insert(0, f"{module}.{target}")
    for path in candidates:
        if not path.startswith("refopt"):
            continue
        obj = _import(path)
        if obj is None or isinstance(obj, _SCALARS):
            continue
        if isinstance(obj, types.ModuleType):
            return _module_link(app, env, node, contnode, path)
        hit = _documented(env).get(id(obj))
        if hit is not None:
            _, entry = hit
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode
            )
    return None


def _module_link(app, env, node, contnode, path):
    """Link an undocumented submodule to its nearest documented ancestor package."""
    modules = env.domains["py"].modules
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:cut])
        if parent in modules:
            entry = modules[parent]
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode
            )
    return None


def _is_constant(obj: Any) -> bool:
    return not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj))


def _defining_module(package: str, name: str, obj: Any) -> str | None:
    """The submodule of ``package`` that defines ``name`` with a ``#:`` doc comment."""
    for modname in sorted(m for m in sys.modules if m.startswith(package + ".")):
        module = sys.modules[modname]
        if getattr(module, name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # no source available
            continue
        if ("", name) in docs:
            return modname
    return None


class ConstantsDirective(SphinxDirective):
    """``.. refopt-constants:: package``: autodata for the data constants in ``__all__``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        module = importlib.import_module(package)
        lines: list[str] = []
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if name.startswith("__") or not _is_constant(obj):
                continue
            where = _defining_module(package, name, obj)
            if where is None:
                lines += [f".. py:data:: {package}.{name}", f"   :value: {obj!r}", ""]
                continue
            lines += [
                f".. autodata:: {where}.{name}",
                "",
                f"   Exported as ``{package}.{name}``.",
                "",
            ]
        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source=package), container)
        return container.children


def skip_namedtuple_aliases(app: Sphinx, what: str, name: str, obj: Any, skip: bool,
                            options: Any) -> bool | None:
    """Hide NamedTuple field properties ("Alias for field number 0"): the class's
    numpydoc ``Attributes`` section documents the fields."""
    doc = getattr(obj, "__doc__", None) or ""
    if doc.startswith("Alias for field number"):
        return True
    return None


def reset(app: Sphinx, env: Any, *args: Any) -> None:
    if hasattr(env, "_refopt_api_ids"):
        del env._refopt_api_ids


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("refopt-constants", ConstantsDirective)
    app.connect("missing-reference", resolve)
    app.connect("autodoc-skip-member", skip_namedtuple_aliases)
    app.connect("env-updated", reset)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
