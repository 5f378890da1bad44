"""Sphinx configuration of the skbackward documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build is offline: cross-references to Python, NumPy, scikit-learn and
PyTorch resolve through small inventories written by
``sphinxext/offline_inventories.py`` (see that module), never downloaded.
"""

import os
import sys
from pathlib import Path

import skbackward

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

from offline_inventories import write_inventories  # noqa: E402

# -- Project ------------------------------------------------------------------

project = "skbackward"
author = "skbackward developers"
copyright = "2026, skbackward developers"
release = skbackward.__version__
version = release

# -- General ------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # metric names (precision@10) and "+ option" table cells as plain text
    "plain_cells",
    # the gallery's figures link to their full size, as the pages' do
    "gallery_figure_links",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_intersphinx", "sphinxext", "Thumbs.db", ".DS_Store"]
# ``code`` in docstrings and pages is an inline literal, as in scikit-learn
default_role = "literal"
# literal blocks (printed output) are plain text; code blocks say their language
highlight_language = "none"
# every cross-reference must resolve: a broken one fails the (-W) build
nitpicky = True
# "iterable" in a parameter type is plain text (see numpydoc_xref_aliases)
nitpick_ignore = [("py:obj", "iterable")]

# -- API reference: autosummary, autodoc, numpydoc ----------------------------

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
# the page's contents column lists "fit()", not "BackwardSearchRetriever.fit()"
toc_object_entries_show_parents = "hide"
numpydoc_show_class_members = True
numpydoc_show_inherited_class_members = True
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# link the types of parameters ("ndarray", "int", "BackwardSearchRetriever")
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "DataFrame": "pandas.DataFrame",
    "RandomState": "numpy.random.RandomState",
    "Pipeline": "sklearn.pipeline.Pipeline",
    "BackwardSearchRetriever": "skbackward.BackwardSearchRetriever",
    "DistilledRetriever": "skbackward.DistilledRetriever",
    "VectorIndex": "skbackward.indexes.VectorIndex",
    "callable": "callable",
    # numpydoc's default links it to the Python glossary, which is offline here
    "iterable": "iterable",
    "MetadataRequest": "sklearn.utils.metadata_routing.MetadataRequest",
}
numpydoc_xref_ignore = {
    "of", "or", "shape", "default", "optional", "instance", "like", "array",
    "n_samples", "n_features", "n_queries", "n_neighbors", "n_attributes",
    "n_items", "n_query_items", "n_database", "n_conditioned", "n_pairs",
    "n_retrieved", "n_kept", "n_tags", "n_classes", "n_reference", "embedding_dim",
    "n_features_in_", "n_features_new", "n_outputs", "dtype", "int64", "the",
    "same", "layout", "retriever", "ending", "in", "one", "attribute",
    "attributes", "name", "names", "objects", "estimator", "dim", "dim_", "k",
    "float32", "start", "stop",
}

# -- Gallery ------------------------------------------------------------------

# SKBACKWARD_DOCS_SKIP_SLOW=1 skips the examples that need the optional
# cluster extras or run for minutes (their pages are still built, without
# output); CI builds every example.
_slow = r"cluster|scale"  # the names after "plot_"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": (
        rf"/plot_(?!{_slow})"
        if os.environ.get("SKBACKWARD_DOCS_SKIP_SLOW")
        else r"/plot_"
    ),
    "within_subsection_order": "gallery_order.ExampleOrder",
    "doc_module": ("skbackward",),
    "backreferences_dir": "generated",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "min_reported_time": 10,
    "show_memory": False,
    "download_all_examples": False,
}

# -- Cross-references to other projects, offline ------------------------------

intersphinx_mapping = write_inventories(HERE / "_intersphinx")
intersphinx_cache_limit = -1  # never refetch: the inventories are local files
intersphinx_disabled_reftypes = []

# -- HTML -----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skbackward {release}"
html_static_path = ["_static"]
html_css_files = ["skbackward.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # the long page titles fit one row of the navbar; the rest go under "More"
    "header_links_before_dropdown": 4,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
# one-page sections: no empty "Section Navigation" column
html_sidebars = {page: [] for page in ("install", "scaling", "benchmarks",
                                       "benchmarks_scale", "architecture")}
