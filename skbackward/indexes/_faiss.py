"""faiss specifics: import with a clear error, search parameters, selectors.

Only :class:`skbackward.indexes.FaissIndex` imports this module's functions,
so faiss is imported only when a faiss index is built or loaded.
"""

import numpy as np


def import_faiss():
    """The faiss module, or an ImportError that names the extra to install."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "FaissIndex needs faiss: pip install \"skbackward[faiss]\" "
            "(or faiss-cpu / faiss-gpu)."
        ) from exc
    return faiss


def new_index(factory, dim):
    """``faiss.index_factory`` for cosine similarity (inner product on unit
    vectors), with a ValueError naming the factory string when faiss refuses it."""
    faiss = import_faiss()
    if not isinstance(factory, str):
        raise ValueError(f"factory must be a faiss factory string; got {factory!r}.")
    try:
        return faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(
            f"faiss cannot build factory={factory!r} for dimension {dim}: {exc}"
        ) from None


def ivf_of(index):
    """The IVF part of ``index`` (through wrappers), or None."""
    faiss = import_faiss()
    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, ValueError):
        return None


def skip_polysemous_training(index):
    """Turn off the polysemous training of PQ codes that faiss's factory asks
    for: it serves only polysemous (Hamming) search, which is not used here,
    and costs minutes (seconds per sub-quantizer)."""
    faiss = import_faiss()
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if getattr(inner, "do_polysemous_training", False):
        inner.do_polysemous_training = False


def hnsw_of(index):
    """The HNSW part of ``index`` (through a pre-transform), or None."""
    faiss = import_faiss()
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return inner if isinstance(inner, faiss.IndexHNSW) else None


def search_parameters(index, selector, nprobe, ef_search):
    """``SearchParameters`` for one search of ``index``.

    Returns ``(params, keep)``: ``keep`` holds the Python objects ``params``
    points to, which must outlive the search.
    """
    faiss = import_faiss()
    inner = faiss.downcast_index(index)
    wrapper = None
    if isinstance(inner, faiss.IndexPreTransform):
        wrapper = faiss.SearchParametersPreTransform()
        inner = faiss.downcast_index(inner.index)
    if isinstance(inner, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = int(nprobe if nprobe is not None else inner.nprobe)
    elif isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()
        params.efSearch = int(ef_search if ef_search is not None
                              else inner.hnsw.efSearch)
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    keep = [params, selector]
    if wrapper is not None:
        wrapper.index_params = params
        params = wrapper
    return params, keep


def bitmap_selector(local_rows, n):
    """An ID selector of the items ``local_rows`` among ``n``; returns
    ``(selector, bits)`` (``bits`` must outlive the selector)."""
    faiss = import_faiss()
    mask = np.zeros(n, dtype=bool)
    mask[local_rows] = True
    bits = np.packbits(mask, bitorder="little")  # faiss reads bit i of byte i >> 3
    return faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits)), bits


# items a probe index holds: enough for the graph indexes that refuse to
# build on fewer than 100 (NSG), few enough to cost nothing
PROBE_ITEMS = 128


def check_searchable(index, factory, sample):
    """Refuse, at fit, a factory whose indexes can never answer a retriever.

    A copy of the trained, empty ``index`` takes the first items of
    ``sample`` (float32 unit vectors) and is searched as a conditional
    ranking searches: with search parameters and an ID selector. Some
    factories build and train but fail at that (``PQ8``, ``RQ4x8``: no
    search parameters; ``NSG16,Flat``; a refinement stage ``...,RFlat``), or
    cannot add items without ids of their own (``IDMap,Flat``): without this
    probe every later query would fail inside faiss.
    """
    probe = deserialize(serialize(index))
    items = np.ascontiguousarray(sample[:PROBE_ITEMS])
    selector, bits = bitmap_selector(np.arange(items.shape[0]), items.shape[0])
    params, keep = search_parameters(probe, selector, None, None)
    try:
        probe.add(items)
        probe.search(items[:1], 1, params=params)
    except RuntimeError as exc:
        raise ValueError(
            f"faiss factory={factory!r} cannot add and search items as a "
            "retriever does (with search parameters and an ID selector, which "
            f"conditional rankings need): {exc}. Choose another factory, e.g. "
            "'Flat', 'HNSW32', 'IVF1024,Flat' or 'IVF4096,PQ32'."
        ) from None
    del keep, bits  # they had to outlive the search


def serialize(index):
    return import_faiss().serialize_index(index)


def deserialize(data):
    return import_faiss().deserialize_index(data)
