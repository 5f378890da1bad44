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
below (``name  role  path-on-the-site``; ``$`` in the path stands for the
name, as in Sphinx's own inventories) and rebuild.
"""

import zlib
from pathlib import Path

# project key: (project name, base URL, entries "name role path")
INVENTORIES = {
    "python": ("Python", "https://docs.python.org/3/", """
        int                   py:class  library/functions.html#$
        float                 py:class  library/functions.html#$
        bool                  py:class  library/functions.html#$
        str                   py:class  library/stdtypes.html#$
        dict                  py:class  library/stdtypes.html#$
        list                  py:class  library/stdtypes.html#$
        tuple                 py:class  library/stdtypes.html#$
        object                py:class  library/functions.html#$
        callable              py:function library/functions.html#$
        None                  py:data   library/constants.html#$
        True                  py:data   library/constants.html#$
        False                 py:data   library/constants.html#$
        bltin-boolean-values  std:label library/stdtypes.html#$
    """),
    "numpy": ("NumPy", "https://numpy.org/doc/stable/", """
        numpy.ndarray               py:class  reference/generated/$.html#$
        numpy.dtype                 py:class  reference/generated/$.html#$
        numpy.random.RandomState    py:class  reference/random/legacy.html#$
        numpy.random.Generator      py:class  reference/random/generator.html#$
        array_like                  std:term  glossary.html#term-array_like
        arrays.scalars              std:label reference/arrays.scalars.html#arrays-scalars
    """),
    "sklearn": ("scikit-learn", "https://scikit-learn.org/stable/", """
        sklearn.base.BaseEstimator                    py:class    modules/generated/$.html#$
        sklearn.base.TransformerMixin                 py:class    modules/generated/$.html#$
        sklearn.base.clone                            py:function modules/generated/$.html#$
        sklearn.feature_selection.SelectFromModel     py:class    modules/generated/$.html#$
        sklearn.model_selection.GridSearchCV          py:class    modules/generated/$.html#$
        sklearn.model_selection.GroupKFold            py:class    modules/generated/$.html#$
        sklearn.model_selection.KFold                 py:class    modules/generated/$.html#$
        sklearn.model_selection.cross_val_score       py:function modules/generated/$.html#$
        sklearn.model_selection.train_test_split      py:function modules/generated/$.html#$
        sklearn.datasets.load_digits                  py:function modules/generated/$.html#$
        sklearn.neighbors.NearestNeighbors            py:class    modules/generated/$.html#$
        sklearn.pipeline.Pipeline                     py:class    modules/generated/$.html#$
        sklearn.set_config                            py:function modules/generated/$.html#$
        sklearn.utils.metadata_routing.MetadataRequest py:class   modules/generated/$.html#$
        sklearn.utils.estimator_checks.parametrize_with_checks py:function modules/generated/$.html#$
        meta-estimator                                std:term    glossary.html#term-meta-estimator
        metadata_routing                              std:label   metadata_routing.html#metadata-routing
        df_output_transform                           std:label   modules/df_output_transform.html#df-output-transform
        sphx_glr_auto_examples_miscellaneous_plot_set_output.py std:label auto_examples/miscellaneous/plot_set_output.html#sphx-glr-auto-examples-miscellaneous-plot-set-output-py
    """),
    "torch": ("PyTorch", "https://docs.pytorch.org/docs/stable/", """
        torch.nn.Module       py:class  generated/$.html#$
        torch.device          py:class  tensor_attributes.html#$
        torch.Tensor          py:class  tensors.html#$
    """),
    "pandas": ("pandas", "https://pandas.pydata.org/docs/", """
        pandas.DataFrame      py:class  reference/api/$.html#$
    """),
}


def _entries(table):
    for line in table.strip().splitlines():
        name, role, path = line.split()
        yield f"{name} {role} 1 {path} -"


def write_inventories(directory):
    """Write one ``<key>.inv`` per project into ``directory``.

    Returns the ``intersphinx_mapping`` for ``conf.py``: each project's base
    URL with its local inventory, so nothing is downloaded.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for key, (project, url, table) in INVENTORIES.items():
        header = (
            "# Sphinx inventory version 2\n"
            f"# Project: {project}\n"
            "# Version: \n"
            "# The remainder of this file is compressed using zlib.\n"
        )
        body = "\n".join(_entries(table)) + "\n"
        path = directory / f"{key}.inv"
        path.write_bytes(header.encode() + zlib.compress(body.encode()))
        mapping[key] = (url, str(path))
    return mapping
