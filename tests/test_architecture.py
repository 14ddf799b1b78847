"""The package's shape: one-way imports, no private names across modules, library code free of CLI code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nas"
CLI_MODULES = {"nas.cli", "nas.demo", "nas.argtypes", "nas.console"} | {
    f"nas.{p.parent.name}.cli" for p in PACKAGE.glob("*/cli.py")
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every ``nas`` import; top level skips function bodies and
    ``if TYPE_CHECKING:`` blocks (they run later or never, so they cannot close a cycle at import)."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("nas"):
                if not (top_level_only and nested):
                    found.append((child.module, [a.name for a in child.names], child.lineno))
            elif isinstance(child, ast.Import) and not (top_level_only and nested):
                found.extend((a.name, [], child.lineno) for a in child.names if a.name.startswith("nas"))
            visit(child, inner)

    visit(tree, False)
    return found


def test_no_private_name_crosses_a_module_boundary():
    crossing = [
        f"{name}:{line} imports {target}.{item}"
        for name, path in MODULES.items()
        for target, items, line in imports(path, top_level_only=False)
        for item in items
        if item.startswith("_") and not item.endswith("__") and target != name
    ]
    crossing += [
        f"{name}: '{target}'"
        for name, path in MODULES.items()
        for target, _, _ in imports(path, top_level_only=False)
        if any(part.startswith("_") and part != "__init__" for part in target.split("."))
    ]
    assert not crossing


def test_library_code_never_imports_cli_code():
    leaks = [
        f"{name}:{line} imports {target}"
        for name, path in MODULES.items()
        if name not in CLI_MODULES
        for target, items, line in imports(path, top_level_only=False)
        if target in CLI_MODULES or any(f"{target}.{item}" in CLI_MODULES for item in items)
    ]
    assert not leaks


def resolve(target: str, items: list[str]) -> list[str]:
    """The modules an import statement loads: ``from nas.a import b`` is module ``nas.a.b`` if b is one."""
    found = [target] if target in MODULES else []
    found += [f"{target}.{item}" for item in items if f"{target}.{item}" in MODULES]
    return found


def test_no_import_cycle():
    graph = {
        name: {m for t, items, _ in imports(path, top_level_only=True) for m in resolve(t, items)} - {name}
        for name, path in MODULES.items()
    }
    cycles, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles


@pytest.mark.parametrize("module", ["nas", "nas.registry", "nas.errors", "nas.extras"])
def test_light_modules_do_not_import_torch(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
