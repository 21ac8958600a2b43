"""The package's layers, read from its source with ``ast`` (nothing of priorsep is imported):
no import cycles, and inference never depends on training.

What counts as an edge ``A -> B`` (A imports B):

- every ``import`` / ``from ... import`` statement anywhere in A's module, inside functions
  and methods too (a lazy import still runs, so it must not hide a cycle), except under
  ``if TYPE_CHECKING:`` (never run); relative imports are resolved;
- ``from P import x`` where ``P.x`` is a module: A imports ``P.x``; otherwise A imports
  ``P`` (a package's ``__init__``), and where ``P``'s ``__init__`` re-exports ``x`` lazily
  (:func:`priorsep._lazy.lazy_exports` over a table of module names), A also imports the
  module that table names for ``x``, since ``from P import x`` imports it;
- importing ``P.Q.m`` also imports the packages ``P.Q`` and ``P`` unless A lies inside them
  (Python imports a module's parent packages first, and A's own are already imported).

Not counted: ``importlib.import_module`` with a computed name, and attribute access on a
package (``priorsep.separate.Separator``): neither is an import statement.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE = "priorsep"
#: the inference layers and the runtime below them: none may import priorsep.training,
#: directly or through other modules (training may import them: it produces the priors they use)
BELOW_TRAINING = ("priorsep.separate", "priorsep.priors", "priorsep.audio", "priorsep.spectral", "priorsep.metrics",
                  "priorsep.baselines", "priorsep.runtime", "priorsep.launch")
TRAINING = "priorsep.training"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (source file, is a package), for every ``.py`` file of the package."""
    spec = importlib.util.find_spec(PACKAGE)  # a top-level name: found, not imported
    root = Path(spec.origin).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_statements(tree: ast.AST):
    """Every import statement in ``tree``, at any depth, except those under ``if TYPE_CHECKING:``
    (their ``else:`` branch counts)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    """A package ``__init__``'s lazy exports (name -> module, relative to the package): the
    dict its ``lazy_exports(__name__, TABLE)`` call is given, built from the module-level
    assignments of literals it is made of (evaluated without builtins; nothing imported)."""
    table_name = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports" and len(node.args) == 2 \
                and isinstance(node.args[1], ast.Name):
            table_name = node.args[1].id
    if table_name is None:
        return {}
    allowed = (ast.expr_context, ast.Constant, ast.Name, ast.Tuple, ast.List, ast.Dict, ast.DictComp, ast.comprehension)
    literal = [node for node in tree.body if isinstance(node, ast.Assign) and len(node.targets) == 1
               and isinstance(node.targets[0], ast.Name) and all(isinstance(n, allowed) for n in ast.walk(node.value))]
    namespace: dict = {"__builtins__": {}}
    exec(compile(ast.Module(body=literal, type_ignores=[]), "<lazy table>", "exec"), namespace)  # literals only
    table = namespace.get(table_name)
    assert isinstance(table, dict), f"the lazy export table {table_name} is not a literal dict"
    return table


def _resolve(package: str, relative: str) -> str:
    """``relative`` (``".base"``, ``"..mixing"``) from inside ``package``."""
    dots = len(relative) - len(relative.lstrip("."))
    base = package.split(".")[:len(package.split(".")) - (dots - 1)]
    rest = relative[dots:]
    return ".".join(base + ([rest] if rest else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the priorsep modules it imports (see the module docstring for what counts)."""
    modules = _modules()
    trees = {name: ast.parse(path.read_text(), str(path)) for name, (path, _) in modules.items()}
    lazy = {name: _lazy_table(trees[name]) for name, (_, is_package) in modules.items() if is_package}

    def from_names(package: str, name: str) -> list[str]:
        """What ``from package import name`` imports: the submodule, or the package and
        what its lazy table names for ``name`` (followed through further packages)."""
        if f"{package}.{name}" in modules:
            return [f"{package}.{name}"]
        found = [package]
        while name in lazy.get(found[-1], {}):
            found.append(_resolve(found[-1], lazy[found[-1]][name]))
        return found

    graph: dict[str, set[str]] = {}
    for name, (_, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: list[str] = []
        for node in _import_statements(trees[name]):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
                continue
            source = _resolve(package, "." * node.level + (node.module or "")) if node.level else node.module
            for alias in node.names:
                targets += from_names(source, alias.name)
        edges = set()
        for target in targets:
            if target.split(".")[0] != PACKAGE:
                continue
            assert target in modules, f"{name} imports {target}, which is not a module of the package"
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # the target and the parent packages it imports first
                module = ".".join(parts[:i])
                if module != name and not (name + ".").startswith(module + "."):
                    edges.add(module)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one cycle
    through its modules where possible, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_one_cycle(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A path ``a -> b -> ... -> a`` inside ``component`` (a strongly connected set)."""
    start = min(component)
    parent = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return sorted(component)


def _reachable(graph: dict[str, set[str]], start: str) -> dict[str, str | None]:
    """Every module ``start`` imports, directly or not, with the module it was reached from."""
    came_from: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    return came_from


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_walk_sees_the_package(graph):
    """The walk finds the package's modules and the imports between them (a broken walk
    would pass the other tests vacuously)."""
    assert len(graph) > 50
    assert "priorsep.separate.separator" in graph["priorsep.separate.choose"]
    assert "priorsep.priors.base" in graph["priorsep.priors.parametric"]
    assert "priorsep.runtime" in graph["priorsep.training.distributed"]
    # a lazy re-export leads to the module that defines the name
    assert "priorsep.priors.load" in graph["priorsep.separate.files"]
    # a parent package is imported with its submodule; one's own packages are not
    assert {"priorsep.priors", "priorsep.priors.specvae"} <= graph["priorsep.training.vae"]
    assert not {"priorsep", "priorsep.training"} & graph["priorsep.training.vae"]


def test_cycle_detection_reports_the_modules():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles(graph):
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", BELOW_TRAINING)
def test_inference_and_runtime_never_import_training(graph, layer):
    inside = [m for m in graph if m == layer or m.startswith(layer + ".")]
    assert inside, f"no module {layer}"
    problems = []
    for module in inside:
        came_from = _reachable(graph, module)
        hit = next((m for m in came_from if m == TRAINING or m.startswith(TRAINING + ".")), None)
        if hit:
            path = [hit]
            while came_from[path[-1]] is not None:
                path.append(came_from[path[-1]])
            problems.append(" -> ".join(reversed(path)))
    assert not problems, "inference imports training: " + "; ".join(problems)
