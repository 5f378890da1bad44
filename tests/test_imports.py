"""The package's modules import without cycles (indexes.py and _milvus.py
once imported each other through an import at the bottom of one), each
imports first in a fresh interpreter, and every public import path works."""

import ast
import subprocess
import sys
from pathlib import Path

import skbackward

PACKAGE = Path(skbackward.__file__).parent


def _modules():
    """Module name -> path, the package itself as ``skbackward``."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("skbackward",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _package_of(name, path):
    """The package a relative import in module ``name`` starts from."""
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def _imports(name, path, modules):
    """The skbackward modules ``path`` (module ``name``) imports anywhere in
    its code (module level or inside functions: a lazy import still closes a
    cycle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, level - 1 up
                package = _package_of(name, path).split(".")
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
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
    graph = {name: _imports(name, path, modules) - {name}
             for name, path in modules.items()}
    # the graph is seen, relative imports of subpackages included
    assert graph["skbackward.indexes"] >= {"skbackward.indexes._milvus"}
    assert graph["skbackward._retrievers._base"] >= {"skbackward._utils._validation"}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_each_module_imports_first_in_a_fresh_interpreter():
    # without the package's __init__ running first, which would import the
    # others in its own order and hide a module that needs another half-built
    names = sorted(n for n in _modules() if n != "skbackward")
    assert "skbackward.indexes._milvus_store" in names
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


# The public import paths of 0.1.0, kept whatever the modules' layout behind
# them: users and pickles of their code write these.
PUBLIC = {
    "skbackward": ["BackwardSearchRetriever", "DistilledRetriever",
                   "LabelFilterRetriever", "CentroidShiftRetriever",
                   "NearestNeighborRetriever", "__version__"],
    "skbackward.indexes": ["ExactIndex", "FaissIndex", "MilvusIndex", "VectorIndex"],
    "skbackward.metrics": [
        "precision_at_k", "average_precision_at_k", "attribute_preservation_at_k",
        "tag_similarity_at_k", "conditional_neighbors", "neighbor_overlap_at_k",
        "hit_at_k", "retrieval_scores", "make_precision_scorer",
        "make_average_precision_scorer", "make_retrieval_scorer",
    ],
    "skbackward.model_selection": ["sample_queries", "sample_query_pairs"],
    "skbackward.datasets": ["load_digit_styles"],
    "skbackward.exceptions": ["ConditionNotReachedWarning"],
}


def test_public_import_paths():
    # in a fresh interpreter, each name by its documented path, and __all__
    # lists exactly the public names of each public module
    script = f"""
import importlib
for module, names in {PUBLIC!r}.items():
    m = importlib.import_module(module)
    for name in names:
        assert getattr(m, name) is not None, (module, name)
    exported = set(getattr(m, "__all__", names))
    assert set(names) <= exported, (module, set(names) - exported)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stdout + done.stderr


def test_public_classes_say_their_public_module():
    # the retrievers' and indexes' __module__ is where users import them
    # from, so that reprs, docs and pickles name the public path
    import skbackward.indexes as indexes

    for name in PUBLIC["skbackward"][:-1]:
        assert getattr(skbackward, name).__module__ == "skbackward", name
    for name in PUBLIC["skbackward.indexes"]:
        assert getattr(indexes, name).__module__ == "skbackward.indexes", name
