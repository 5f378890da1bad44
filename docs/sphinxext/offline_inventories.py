"""Intersphinx inventories for an offline build.

Intersphinx resolves references to other projects (``:class:`numpy.ndarray```,
numpydoc's ``int`` or ``array_like``) through each project's ``objects.inv``,
which it normally downloads. Our builds (CI included) reach no website, and
no installed package ships those files, so this module writes small
inventories instead: the external names our docstrings and pages refer to,
each with its page on the project's site. The links in the built HTML point
to the real online documentation.

``nitpicky = True`` in ``conf.py`` makes any reference that resolves nowhere a
warning, and ``-W`` an error: when the build reports
``py:class reference target not found: numpy.something``, add a line for it
to ``INVENTORIES`` below (``name role``, and the page on the project's site
when it is not the project's default page; every ``$`` in a path stands
for the name) and rebuild.
"""

import zlib
from pathlib import Path

# project key: (project name, base URL, default path, entries). An entry is
# "name role" or "name role path"; the path is relative to the base URL and
# defaults to the project's default path.
INVENTORIES = {
    "python": (
        "Python", "https://docs.python.org/3/",
        "library/functions.html#$", """
        int                   py:class
        float                 py:class
        bool                  py:class
        object                py:class
        callable              py:function
        str                   py:class    library/stdtypes.html#$
        dict                  py:class    library/stdtypes.html#$
        list                  py:class    library/stdtypes.html#$
        tuple                 py:class    library/stdtypes.html#$
        None                  py:data     library/constants.html#$
        True                  py:data     library/constants.html#$
        False                 py:data     library/constants.html#$
        UserWarning           py:exception library/exceptions.html#$
        bltin-boolean-values  std:label   library/stdtypes.html#$
    """),
    "numpy": (
        "NumPy", "https://numpy.org/doc/stable/",
        "reference/generated/$.html#$", """
        numpy.ndarray               py:class
        numpy.dtype                 py:class
        numpy.random.RandomState    py:class  reference/random/legacy.html#$
        numpy.random.Generator      py:class  reference/random/generator.html#$
        array_like                  std:term  glossary.html#term-array_like
        arrays.scalars   std:label  reference/arrays.scalars.html#arrays-scalars
    """),
    "sklearn": (
        "scikit-learn", "https://scikit-learn.org/stable/",
        "modules/generated/$.html#$", """
        sklearn.base.BaseEstimator                      py:class
        sklearn.base.TransformerMixin                   py:class
        sklearn.base.clone                              py:function
        sklearn.datasets.load_digits                    py:function
        sklearn.feature_selection.SelectFromModel       py:class
        sklearn.model_selection.GridSearchCV            py:class
        sklearn.model_selection.GroupKFold              py:class
        sklearn.model_selection.KFold                   py:class
        sklearn.model_selection.cross_val_score         py:function
        sklearn.model_selection.train_test_split        py:function
        sklearn.neighbors.NearestNeighbors              py:class
        sklearn.pipeline.Pipeline                       py:class
        sklearn.set_config                              py:function
        sklearn.utils.Bunch                             py:class
        sklearn.utils.metadata_routing.MetadataRequest  py:class
        meta-estimator      std:term   glossary.html#term-meta-estimator
        metadata_routing    std:label  metadata_routing.html#metadata-routing
        df_output_transform std:label
            modules/df_output_transform.html#df-output-transform
        sphx_glr_auto_examples_miscellaneous_plot_set_output.py std:label
            auto_examples/miscellaneous/plot_set_output.html#sphx-glr-auto-examples-miscellaneous-plot-set-output-py
    """),
    "torch": (
        "PyTorch", "https://docs.pytorch.org/docs/stable/",
        "generated/$.html#$", """
        torch.nn.Module       py:class
        torch.device          py:class  tensor_attributes.html#$
        torch.Tensor          py:class  tensors.html#$
    """),
    "joblib": (
        "joblib", "https://joblib.readthedocs.io/en/stable/",
        "generated/$.html#$", """
        joblib.Memory         py:class
    """),
    "pandas": (
        "pandas", "https://pandas.pydata.org/docs/",
        "reference/api/$.html#$", """
        pandas.DataFrame      py:class
    """),
}


def _entries(table, default_path):
    # an entry may continue on the next, more indented line (a long path)
    for entry in table.strip().replace("\n            ", " ").splitlines():
        name, role, *path = entry.split()
        # Sphinx substitutes only a trailing "$"; a "$" inside a path (a page
        # named after the object) is substituted here
        location = (path[0] if path else default_path).replace("$", name)
        yield f"{name} {role} 1 {location} -"


def write_inventories(directory):
    """Write one ``<key>.inv`` per project into ``directory``.

    Returns the ``intersphinx_mapping`` for ``conf.py``: each project's base
    URL with its local inventory, so nothing is downloaded.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for key, (project, url, default_path, table) in INVENTORIES.items():
        header = (
            "# Sphinx inventory version 2\n"
            f"# Project: {project}\n"
            "# Version: \n"
            "# The remainder of this file is compressed using zlib.\n"
        )
        body = "\n".join(_entries(table, default_path)) + "\n"
        path = directory / f"{key}.inv"
        path.write_bytes(header.encode() + zlib.compress(body.encode()))
        mapping[key] = (url, str(path))
    return mapping
