"""The house's import rules: fitting/ never reaches store/ or viz/, store/ never reaches viz/,
and no module imports back into a module that imports it (no cycles)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "toylab"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
MODULE_NAMES = set(MODULES)


def imports_of(path: Path) -> set[str]:
    """Every toylab module a file imports (at any depth, including imports inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("toylab"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(
                    package[: len(package) - node.level + 1]
                    + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            if base.startswith("toylab"):
                # `from pkg import module` depends on the module; `from mod import name` on mod.
                subs = {f"{base}.{a.name}" for a in node.names}
                found.update(subs & MODULE_NAMES or {base})
    return found


def resolved(names: set[str]) -> set[str]:
    return {n for n in names if n in MODULES}


GRAPH = {name: resolved(imports_of(path)) for name, path in MODULES.items()}


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("toylab.fitting", ("toylab.store", "toylab.viz", "toylab.cli")),
        ("toylab.store", ("toylab.viz", "toylab.cli")),
    ],
)
def test_lower_folders_never_import_higher_ones(folder, forbidden):
    bad = [
        (name, dep)
        for name, deps in GRAPH.items()
        if name == folder or name.startswith(folder + ".")
        for dep in deps
        if any(dep == f or dep.startswith(f + ".") for f in forbidden)
    ]
    assert not bad, bad


def test_no_import_cycles():
    graph = {n: deps - {n} for n, deps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_rules_see_real_imports():
    # Guard against a test that cannot fail: the graph must contain known edges.
    assert "toylab.fitting.methods" in GRAPH["toylab.run"]
    assert "toylab.store.rundir" in GRAPH["toylab.cli.run_cmd"]
