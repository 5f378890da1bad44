"""Every public class, function and method has a valid numpydoc docstring.

The public API is what the modules below export (``__all__``). For a class,
its public methods are checked when their code is ours, including those
inherited from our base classes (``fit``, ``index``, ``transform``,
``kneighbors``, ...); methods inherited unchanged from scikit-learn
(``get_params``, ``set_output``, ...) are scikit-learn's docstrings, not ours.

numpydoc's checks are all enforced except:

- ``GL01``: numpydoc wants the summary on the line after the opening quotes;
  we follow PEP 257 and scikit-learn (summary on the first line).
- ``ES01``: an extended summary is not required where the summary says it all.
- ``SA01``: a See Also section is not required everywhere.
- ``RT02``: we name returned values (``self : object``), as scikit-learn does.
- ``EX01`` for methods: classes and functions must show an example (which
  runs as a doctest); their methods are shown there and in the user guide.

The docstring examples themselves run as doctests (``--doctest-modules`` in
setup.cfg).
"""

import importlib
import inspect

import pytest
from numpydoc.validate import validate

PUBLIC_MODULES = [
    "skbackward",
    "skbackward.metrics",
    "skbackward.model_selection",
    "skbackward.exceptions",
    "skbackward.indexes",
    "skbackward.datasets",
]
IGNORED = {"GL01", "ES01", "SA01", "RT02"}
IGNORED_FOR_METHODS = IGNORED | {"EX01"}


def _public_objects():
    """Import paths of the public classes and functions, then of the public
    methods of those classes that skbackward defines."""
    objects, methods = [], []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # e.g. __version__
            path = f"{module_name}.{name}"
            objects.append(path)
            if inspect.isclass(obj):
                for attr in sorted(dir(obj)):
                    member = getattr(obj, attr)
                    if attr.startswith("_") or not callable(member):
                        continue
                    if getattr(member, "__module__", "").startswith("skbackward"):
                        methods.append(f"{path}.{attr}")
    return objects, methods


OBJECTS, METHODS = _public_objects()


def _errors(path, ignored):
    return [
        f"{code}: {message}"
        for code, message in validate(path)["errors"]
        if code not in ignored
    ]


def test_the_public_api_is_found():
    # guards against a collection that silently finds nothing
    assert "skbackward.BackwardSearchRetriever" in OBJECTS
    assert "skbackward.metrics.precision_at_k" in OBJECTS
    assert "skbackward.BackwardSearchRetriever.kneighbors" in METHODS
    assert "skbackward.DistilledRetriever.set_params" in METHODS
    assert "skbackward.BackwardSearchRetriever.get_params" not in METHODS


@pytest.mark.parametrize("path", OBJECTS)
def test_class_and_function_docstrings(path):
    assert _errors(path, IGNORED) == []


@pytest.mark.parametrize("path", METHODS)
def test_method_docstrings(path):
    assert _errors(path, IGNORED_FOR_METHODS) == []


def test_random_state_says_what_is_reproduced_where():
    # every trained retriever says what an int random_state reproduces: bit
    # for bit on one machine, torch build, CPU kernels and thread count, not
    # across CPUs (where training amplifies the last bits of other kernels)
    import skbackward

    for name in ("BackwardSearchRetriever", "DistilledRetriever",
                 "LabelFilterRetriever", "CentroidShiftRetriever",
                 "NearestNeighborRetriever"):
        doc = " ".join(getattr(skbackward, name).__doc__.split())
        entry = doc[doc.index("random_state :"):]
        entry = entry[:entry.index(" verbose :")]
        for words in ("bit-identical results on the same machine",
                      "the same CPU kernels", "the same ``n_threads``",
                      "ATEN_CPU_CAPABILITY", "another network"):
            assert words in entry, (name, words)
