"""The package's layout, read from its source: no module over 450 lines, and no import cycle between its
modules (read with ast: every import statement counts, at module level or inside a function)."""
import ast
from pathlib import Path

import paddle_strategy

PACKAGE = Path(paddle_strategy.__file__).parent
MAX_LINES = 450


def package_modules():
    """{dotted module name: path} for every .py file of the package (a package is its __init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("paddle_strategy",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported_names(name, path):
    """Dotted names each import statement in the file refers to (`from .x import y` gives `<pkg>.x.y`)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:  # relative: `from ..x import y` climbs level - 1 packages up from this one
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph():
    """{module: the package's modules it imports} (a name resolves to the longest module prefix it has)."""
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in imported_names(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One cycle as a list of modules [a, b, ..., a], or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_sees_a_cycle_and_an_acyclic_graph():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_resolves_relative_and_function_level_imports():
    graph = import_graph()
    s = "paddle_strategy.schedules"
    assert {f"{s}.ppocr", f"{s}.torch", f"{s}.parts", "paddle_strategy._checks"} <= graph[f"{s}.registry"]
    assert f"{s}.torch" in graph[f"{s}.ppocr"]  # `from .torch import ...`
    # strategies/settings.py imports the registry inside a function
    assert f"{s}.registry" in graph["paddle_strategy.strategies.settings"]


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph()) is None


def test_no_module_over_450_lines():
    modules = package_modules()
    assert len(modules) > 40 and "paddle_strategy.lr_find" in modules  # the walk sees the whole package
    lines = {name: len(path.read_text().splitlines()) for name, path in modules.items()}
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}
