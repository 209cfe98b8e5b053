"""No import cycle anywhere in the repository's Python code.

A cycle is found statically, from every import statement a module holds wherever it stands (module
level, inside a function, under `if TYPE_CHECKING`): a function-level import only postpones a cycle to
run time, and a type-checking one still ties the two modules' designs together.
"""

from __future__ import annotations

import ast
from pathlib import Path

from local.template import REPO_ROOT

# The packages, each with the directory on sys.path it is imported from (the layer's is installed).
# The handlers (functions/<name>/app.py) are named as mypy checks them: functions.<name>.app.
PACKAGES = {
    "local": REPO_ROOT,
    "bench": REPO_ROOT,
    "ops": REPO_ROOT,
    "tests": REPO_ROOT,
    "ingest": REPO_ROOT / "layers" / "shared",
    "functions": REPO_ROOT,
}

Graph = dict[str, set[str]]


def package_modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module of the packages by its dotted name (a package by its own, for its __init__)."""
    modules = {}
    for package, root in packages.items():
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of `modules` that the module's import statements name, wherever the statements stand.

    `from a import b` names the module a.b when there is one, else a (b is then a name inside a). A
    parent package is not counted: `import a.b` runs a's __init__, but a package that imports its own
    modules is no cycle."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            named |= {
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            }
    return (named & modules.keys()) - {module}


def import_graph(modules: dict[str, Path]) -> Graph:
    """Module -> the modules of `modules` it imports."""
    return {module: imports(module, path, modules) for module, path in modules.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (its modules in import order, the first repeated at the end) per strongly connected
    group of modules; none when the graph is acyclic."""
    found = []
    for group in strongly_connected(graph):
        if len(group) > 1:
            start = min(group)
            found.append([start, *path_back(graph, group, start), start])
    return sorted(found)


def strongly_connected(graph: Graph) -> list[set[str]]:
    """Tarjan's algorithm, iterative: no chain of imports meets Python's recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def path_back(graph: Graph, group: set[str], start: str) -> list[str]:
    """The shortest way from `start` back to itself inside its group, without `start` at either end."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & group):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[-2::-1]
                if successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group without a way back")


def test_the_repository_has_no_import_cycle() -> None:
    """GIVEN every module of local, bench, ops, tests, the layer's ingest and the functions' handlers
    WHEN their import statements (module level and inside functions) are followed
    THEN no module leads back to itself."""
    modules = package_modules(PACKAGES)
    assert {"local.stack", "local.faults", "bench.common", "ops.cli", "ingest.consumer"} <= modules.keys()
    assert {
        f"functions.{name}.app" for name in ("producer", "consumer", "reader", "migrator")
    } <= modules.keys()

    found = cycles(import_graph(modules))

    assert found == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_local_stack_knows_nothing_of_what_runs_on_it() -> None:
    """GIVEN the local stack's module
    WHEN the imports are followed from it, module after module
    THEN none leads to the faults staged on it, the console, the drill or the demo that wires them."""
    graph = import_graph(package_modules(PACKAGES))
    reached, frontier = set(), {"local.stack"}
    while frontier:
        reached |= frontier
        frontier = set().union(*(graph[module] for module in frontier)) - reached

    above = ("local.faults", "local.console", "local.drill", "local.demo")
    assert [module for module in sorted(reached) if module.startswith(above)] == []
    assert {"local.servers", "local.api_gateway", "local.supervisor"} <= reached


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package_modules({"pkg": root})


def test_a_cycle_through_a_function_level_import_is_named(tmp_path: Path) -> None:
    """GIVEN pkg.a importing pkg.b at module level, pkg.b importing pkg.c, and pkg.c importing pkg.a
    only inside a function (with a relative import)
    WHEN the cycles are looked for
    THEN the one cycle is named in import order."""
    modules = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "from pkg import c\n",
            "pkg/c.py": "def later():\n    from .a import name\n",
            "pkg/d.py": "from pkg.a import name\n",
        },
    )

    assert cycles(import_graph(modules)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_a_package_importing_its_modules_is_no_cycle(tmp_path: Path) -> None:
    """GIVEN a package whose __init__ re-exports its modules, which import each other one way
    WHEN the cycles are looked for
    THEN there is none; and once the second imports the first back, that cycle is found."""
    files = {
        "pkg/__init__.py": "from pkg.first import one\nfrom pkg.second import two\n",
        "pkg/first.py": "one = 1\n",
        "pkg/second.py": "from pkg.first import one\ntwo = one + 1\n",
    }
    assert cycles(import_graph(write_package(tmp_path, files))) == []

    files["pkg/first.py"] = "import typing\nif typing.TYPE_CHECKING:\n    from pkg.second import two\n"
    assert cycles(import_graph(write_package(tmp_path, files))) == [["pkg.first", "pkg.second", "pkg.first"]]
