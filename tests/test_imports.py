"""The package's modules import without cycles (issue 18: indexes.py and
_milvus.py imported each other through an import at the bottom of one)."""

import ast
import subprocess
import sys
from pathlib import Path

import skbackward

PACKAGE = Path(skbackward.__file__).parent


def _modules():
    """Module name -> path, the package itself as ``skbackward``."""
    out = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = "skbackward" if path.stem == "__init__" else f"skbackward.{path.stem}"
        out[name] = path
    return out


def _imports(path, modules):
    """The skbackward modules ``path`` imports anywhere in its code (module
    level or inside functions: a lazy import still closes a cycle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the package (no subpackages here)
                base = "skbackward" + (f".{base}" if base else "")
            if not base.startswith("skbackward"):
                continue
            for alias in node.names:  # from . import _faiss: a module
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    return found


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert graph["skbackward.indexes"] >= {"skbackward._milvus"}  # the graph is seen
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_each_module_imports_first_in_a_fresh_interpreter():
    # without the package's __init__ running first, which would import the
    # others in its own order and hide a module that needs another half-built
    names = sorted(n for n in _modules() if n != "skbackward")
    script = f"""
import importlib, sys, types
failed = []
for name in {names!r}:
    for m in [m for m in sys.modules if m.split(".")[0] == "skbackward"]:
        del sys.modules[m]
    stub = types.ModuleType("skbackward")
    stub.__path__ = [{str(PACKAGE)!r}]
    stub.__file__ = {str(PACKAGE / "__init__.py")!r}
    sys.modules["skbackward"] = stub
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
