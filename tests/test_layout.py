"""The package's modules keep to their own private methods (issue 18).

A call ``x._name(...)`` reaches into another object's internals: the
retriever into an index's build hooks, the dask helpers into an estimator's
checks, a student into its teacher's helpers. Such coupling is what made the
retriever base a 900-line class; each module now calls only public methods
of other objects (and private ones on ``self``, ``cls`` and ``super()``), and
shared helpers are module functions.
"""

import ast
import importlib.util

from .test_imports import _modules

# Receivers whose private methods a module may call: the object's own, and a
# module's private functions (``from . import _dask; _dask.transform`` is a
# module of this package, ``sys._getframe`` CPython's documented way to walk
# the stack).
OWN = {"self", "cls"}
# A name bound in the same function to one of these is a copy of ``self``,
# an instance of the same class: its private methods are the class's own
# (Python's privacy is per class). ``_grown`` is VectorIndex's hook that
# returns such a copy (``extend`` fills it).
COPIES_OF_SELF = {"copy.copy(self)", "copy.deepcopy(self)", "self._grown"}


def _module_names(tree, package):
    """Names bound to modules by the import statements of ``tree``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = package + (f".{base}" if base else "")
            for alias in node.names:
                try:
                    spec = importlib.util.find_spec(f"{base}.{alias.name}")
                except (ImportError, ValueError):
                    spec = None
                if spec is not None:
                    names.add(alias.asname or alias.name)
    return names


def _private_calls(path):
    """``(line, "receiver._name")`` of calls of a private method on an object
    other than ``self``/``cls``/``super()``/a module/a copy of ``self``."""
    tree = ast.parse(path.read_text())
    return sorted(_calls_in(tree, OWN | _module_names(tree, "skbackward")))


def _copies_of_self(function):
    """Names ``function`` binds to a copy of ``self`` (``COPIES_OF_SELF``)."""
    names = set()
    for node in ast.walk(function):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and (ast.unparse(node.value) in COPIES_OF_SELF
                     or ast.unparse(node.value.func) in COPIES_OF_SELF)):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _calls_in(node, own):
    """The private calls under ``node``; a function adds its copies of self
    to the receivers allowed in its body."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        own = own | _copies_of_self(node)
    found = []
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        name, receiver = node.func.attr, node.func.value
        dunder = name.startswith("__") and name.endswith("__")  # __init__ etc.
        allowed = (
            (isinstance(receiver, ast.Name) and receiver.id in own)
            or (isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super")
        )
        if name.startswith("_") and not dunder and not allowed:
            found.append((node.lineno, f"{ast.unparse(receiver)}.{name}"))
    for child in ast.iter_child_nodes(node):
        found += _calls_in(child, own)
    return found


def test_no_module_calls_another_objects_private_methods():
    found = [
        f"{name}:{line}: {call}(...)"
        for name, path in _modules().items()
        for line, call in _private_calls(path)
    ]
    assert not found, "private methods called on other objects:\n" + "\n".join(found)


def test_the_check_sees_a_private_call(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text(
        "import sys\n"
        "def f(index, self):\n"
        "    sys._getframe(1)\n"  # a module's: allowed
        "    self._own()\n"
        "    super()._own()\n"
        "    index._add(1,\n"
        "               2)\n"
        "    self.index._end_build()\n"
        "    new = copy.copy(self)\n"
        "    new._add(3)\n"  # a copy of self: its own class's
        "    other = copy.copy(index)\n"
        "    other._add(4)\n"
    )
    assert _private_calls(path) == [(6, "index._add"), (8, "self.index._end_build"),
                                    (12, "other._add")]
