"""Milvus specifics of :class:`~skbackward.indexes.MilvusIndex`: settings,
label storage, builds behind an alias, inserts, reads and tiered searches.

Layout. The user's collection name is a Milvus *alias*; each build (``fit``,
or ``index`` without ``append``) writes a collection of its own,
``<name>__<build>``, ``<build>`` being 16 random hex digits also recorded as
the collection property ``skbackward.build``. The alias moves to a build only
once it is complete, so a reader by name never sees a partial build, and a
fitted index, which searches its own build's collection, finds it gone (a
clear error) once another build replaced it, never another build's items.

A build's collection holds one entity per item:

- ``id`` (INT64, primary key): ``(part << 32) + item``, where ``item`` is the
  item's number in insertion order and ``part`` a random number of the build
  or the append that wrote it (``id & 0xFFFFFFFF`` is the item number). Two
  copies of one fitted index that both append write distinct ids, so neither
  overwrites the other; the second to finish sees more items than it expects
  and takes its own back out (see :class:`MilvusIndex`);
- ``vector`` (FLOAT_VECTOR): the unit (L2-normalised, float32) embedding,
  searched by inner product (= cosine similarity on unit vectors);
- ``norm`` (FLOAT): the norm of the raw embedding (``X=None`` queries need
  the raw embeddings of the indexed items);
- ``pred_<a>`` (INT64): the heads' predicted class (0..C-1) of attribute
  number ``a``;
- ``cell`` (INT64, only with ``partition_key=True``): the number of the
  item's combination of predicted classes (one class per attribute), the
  collection's partition key: Milvus stores each cell's items in the
  partition its hash picks, and a search filtered on ``cell`` visits only
  those partitions;
- ``label_<a>`` (only when labels are given): the item's label of attribute
  ``a``: INT64 for integer (or boolean) labels that fit it, else VARCHAR of
  the label's text (:func:`label_text`), mapped back through the distinct
  labels the index keeps.

Preference levels are answered inside Milvus, by filter expressions on the
``pred_<a>`` fields (``cell in [...]`` with a partition key): the queries are
grouped by their distinct wish rows, and
each group searches its best level first and the next level only for the
queries that found fewer than k (the levels are disjoint, so nothing is
fetched twice).
"""

import itertools
import numbers
import re
import secrets

import numpy as np

from .._utils._validation import C_INT_MAX
from ._milvus_labels import VARCHAR_BYTES, label_text
from ._preference import level_codes, place, query_groups

MAX_TOPK = 16384  # Milvus's limit on neighbours per query
# queries per search call: Milvus Lite holds a (queries x items) similarity
# block per call (1 GiB for 256 queries against a million items)
_MAX_NQ = 256
_QUERY_BATCH = 8192  # rows per query call when reading items back

VECTOR, NORM, CELL = "vector", "norm", "cell"
BUILD_PROPERTY = "skbackward.build"
ITEM_BITS = 32  # an id is (part << ITEM_BITS) + item number
MAX_ITEMS = 2**ITEM_BITS
# Milvus names: letters, digits, "_", not starting with a digit, at most 255
# characters; a build's collection adds "__" and 16 hex digits
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


# ---- settings ----------------------------------------------------------------------

_NLIST = (1, 65536)
_HNSW_BUILD = {"M": (2, 2048), "efConstruction": (1, C_INT_MAX)}
# Milvus's vector index types and what each reads: its build parameters
# (index_params) and its search parameters (search_params), each an integer
# range or a set of options. Milvus ignores the others silently.
INDEX_SETTINGS = {
    "FLAT": ({}, {}),
    "IVF_FLAT": ({"nlist": _NLIST}, {"nprobe": _NLIST}),
    "IVF_SQ8": ({"nlist": _NLIST}, {"nprobe": _NLIST}),
    "IVF_PQ": ({"nlist": _NLIST, "m": (1, 65536), "nbits": (1, 64)},
               {"nprobe": _NLIST}),
    "HNSW": (_HNSW_BUILD, {"ef": (1, C_INT_MAX)}),
    "HNSW_SQ": ({**_HNSW_BUILD, "sq_type": {"SQ6", "SQ8", "BF16", "FP16"}},
                {"ef": (1, C_INT_MAX)}),
    "DISKANN": ({}, {"search_list": (1, C_INT_MAX)}),
    "SCANN": ({"nlist": _NLIST}, {"nprobe": _NLIST, "reorder_k": (1, C_INT_MAX)}),
    "AUTOINDEX": ({}, {"level": (1, 10)}),
}


def check_collection_name(name):
    """A ValueError unless ``name`` can name a Milvus collection and its builds."""
    if not NAME.fullmatch(name):
        raise ValueError(
            "collection must be a Milvus collection name: letters, digits and "
            "'_', not starting with a digit, at most 200 characters; got "
            f"{name!r}."
        )


def check_settings(which, settings, index_type, dim=None):
    """Refuse ``settings`` (``index_params`` or ``search_params``, named by
    ``which``) that ``index_type`` does not read, or values out of range.

    Milvus would ignore an unknown key silently, and refuse a bad value only
    when the index is built or searched; the error names the setting.
    """
    known = INDEX_SETTINGS[index_type][which == "search_params"]
    for key, value in (settings or {}).items():
        if key not in known:
            raise ValueError(
                f"{which} has {key!r}, which index_type={index_type!r} does not "
                f"read; its settings: {sorted(known) or 'none'}."
            )
        spec = known[key]
        if isinstance(spec, set):
            if value not in spec:
                raise ValueError(f"{which}[{key!r}] must be one of {sorted(spec)} "
                                 f"for index_type={index_type!r}; got {value!r}.")
            continue
        low, high = spec
        if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                or not low <= value <= high):
            raise ValueError(
                f"{which}[{key!r}] must be an integer in [{low}, {high}] for "
                f"index_type={index_type!r}; got {value!r}."
            )
    m = (settings or {}).get("m")
    if which == "index_params" and m is not None and dim is not None and dim % m:
        raise ValueError(f"index_params['m'] must divide the embedding dimension "
                         f"{dim} (product quantization splits it); got {m}.")


# ---- builds and the alias ----------------------------------------------------------


def new_build():
    """A build identity: 16 random hex digits."""
    return secrets.token_hex(8)


def new_part(parts):
    """A random part number (31 bits, not 0) not among ``parts``' bases."""
    taken = {base >> ITEM_BITS for base, _, _ in parts}
    while True:
        part = secrets.randbits(31)
        if part and part not in taken:
            return part


def current_target(client, name):
    """What the name ``name`` serves now: ``(collection, build)``.

    ``name`` is an alias (as a build of this package leaves it): its
    collection and the build identity recorded there; a collection of that
    name (made by someone else): ``(name, None)``; nothing: ``(None, None)``.
    """
    # listed first: describing a name that is no alias logs an error
    if name not in client.list_aliases().get("aliases", []):
        return (name, None) if client.has_collection(name) else (None, None)
    target = client.describe_alias(name)["collection_name"]
    properties = client.describe_collection(target).get("properties") or {}
    return target, properties.get(BUILD_PROPERTY)


def create_collection(client, name, build, *, dim, n_attributes, kinds,
                      index_type, index_params, partition_key=False):
    """Create a build's collection (see the module docstring), its build
    identity recorded as a property."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                  description="skbackward item index")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(NORM, DataType.FLOAT)
    for a in range(n_attributes):
        schema.add_field(f"pred_{a}", DataType.INT64)
    if partition_key:
        schema.add_field(CELL, DataType.INT64, is_partition_key=True)
    for a, kind in enumerate(kinds or []):
        if kind == "int":
            schema.add_field(f"label_{a}", DataType.INT64)
        else:
            schema.add_field(f"label_{a}", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    params = client.prepare_index_params()
    params.add_index(field_name=VECTOR, index_type=index_type, metric_type="IP",
                     params=dict(index_params or {}))
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong",
                             properties={BUILD_PROPERTY: build})


def switch_alias(client, name, collection, old):
    """Point the alias ``name`` at ``collection``, then drop ``old`` (the
    collection it served, or None).

    A reader by name sees the old build or the new one. Only a collection
    that itself bears the name (made by someone else, replaced with
    ``overwrite=True``) must go first, as an alias cannot share its name.
    """
    if old is None:
        client.create_alias(collection, name)
    elif old == name:
        client.drop_collection(name)
        client.create_alias(collection, name)
    else:
        client.alter_alias(collection, name)
        client.drop_collection(old)


def count_items(client, collection):
    """Entities in ``collection``."""
    got = client.query(collection, filter="", output_fields=["count(*)"])
    return int(got[0]["count(*)"])


def part_range(base, start, stop):
    """The filter of the ids of items ``start:stop`` written under ``base``."""
    return f"id >= {base + start} and id < {base + stop}"


def parts_filter(parts):
    """The filter of every item of ``parts``: ``(base, start, stop)`` each."""
    ranges = [part_range(*p) for p in parts]
    return ranges[0] if len(ranges) == 1 else " or ".join(f"({r})" for r in ranges)


def insert(client, collection, base, start, unit, norms, predicted, labels, kinds,
           *, batch_size, cells=None, progress=None):
    """Insert items ``start, start+1, ...`` (ids ``base + item``) in batches.

    ``labels`` is None or (m, n_labels), stored as ``kinds`` says; ``cells``
    the items' cell numbers (with a partition key) or None;
    ``progress(n_done)`` is called after each batch.
    """
    n = unit.shape[0]
    for s in range(0, n, batch_size):
        e = min(s + batch_size, n)
        columns = {"id": np.arange(base + start + s, base + start + e).tolist(),
                   NORM: norms[s:e].tolist()}
        for a in range(predicted.shape[1]):
            columns[f"pred_{a}"] = predicted[s:e, a].tolist()
        if cells is not None:
            columns[CELL] = cells[s:e].tolist()
        for a, kind in enumerate(kinds if labels is not None else []):
            values = labels[s:e, a]
            columns[f"label_{a}"] = (values.astype(np.int64).tolist() if kind == "int"
                                     else [label_text(v) for v in values.tolist()])
        keys = list(columns)
        # pymilvus's client takes rows; the vectors go as float32 arrays
        rows = [dict(zip(keys, values), vector=vector)
                for *values, vector in zip(*columns.values(), unit[s:e])]
        client.insert(collection, rows)
        if progress is not None:
            progress(e)


# ---- searches and reads ------------------------------------------------------------


def _pattern_filter(wished, chosen):
    """One conjunction: attribute ``a`` predicted ``chosen[a]``, or none of
    its wished classes when ``chosen[a]`` is None."""
    terms = []
    for a, classes in wished.items():
        if chosen[a] is not None:
            terms.append(f"pred_{a} == {chosen[a]}")
        elif len(classes) == 1:
            terms.append(f"pred_{a} != {classes[0]}")
        else:
            terms.append(f"pred_{a} not in [{', '.join(map(str, classes))}]")
    return " and ".join(terms)


def level_filters(wish):
    """Filter expressions of the preference levels of one wish, best first.

    ``wish`` (n_tiers, A) holds the wanted classes (-1: no wish). An item's
    level is its tuple of wishes met per tier, ranked lexicographically; each
    level's expression selects exactly its items, so the levels partition
    the collection. ``""`` means no filter.
    """
    wished = {}
    for a in range(wish.shape[1]):
        classes = sorted({int(c) for c in wish[:, a] if c >= 0})
        if classes:
            wished[a] = classes
    if not wished:
        return [""]
    levels = {}
    attributes = list(wished)
    for choice in itertools.product(*([None] + wished[a] for a in attributes)):
        chosen = dict(zip(attributes, choice))
        key = tuple(
            sum(chosen.get(a) == tier[a] for a in attributes if tier[a] >= 0)
            for tier in wish
        )
        levels.setdefault(key, []).append(_pattern_filter(wished, chosen))
    return [
        " or ".join(f"({p})" for p in levels[key]) if len(levels[key]) > 1
        else levels[key][0]
        for key in sorted(levels, reverse=True)
    ]


def cell_filters(wish, keys):
    """Filter expressions of the preference levels of one wish on the
    partition key, best first: ``cell in [...]`` with the numbers of the
    cells (rows of ``keys``: their classes per attribute) of each level."""
    if (wish < 0).all():
        return [""]
    codes = level_codes(keys, wish)
    return [f"{CELL} in [{', '.join(map(str, np.flatnonzero(codes == c)))}]"
            for c in np.unique(codes)[::-1]]


def search(client, collection, unit, k, exclude, prefer, n_attributes,
           search_params, parts, cells=None):
    """Top-k items per query with the preference levels as Milvus filters.

    Only the items of ``parts`` are searched: an index object keeps its own
    items even after an append (its own or another copy's) grew the
    collection. ``cells`` (the classes of each cell number, with a partition
    key) makes the filters name cells, so Milvus visits only their partitions.

    Returns (similarity, indices): (n, k) float32 and int64 arrays, -inf and
    -1 where fewer than k were found (an approximate index may miss some).
    """
    n = unit.shape[0]
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    ids = np.full((n, k), -1, dtype=np.int64)
    filled = np.zeros(n, dtype=np.int64)
    own = parts_filter(parts)
    for wish, members in query_groups(prefer, n, n_attributes):
        levels = level_filters(wish) if cells is None else cell_filters(wish, cells)
        for level in levels:
            todo = members[filled[members] < k]
            if not todo.size:
                break
            expr = f"({level}) and ({own})" if level else own
            for s in range(0, todo.size, _MAX_NQ):
                rows = todo[s:s + _MAX_NQ]
                ex = None if exclude is None else exclude[rows]
                s_, i_ = _search_level(client, collection, unit[rows],
                                       k - filled[rows], ex, expr, search_params)
                place(sims, ids, filled, rows, s_, i_)
    return sims, ids


def _search_level(client, collection, unit, need, exclude, expr, search_params):
    """One filtered search: each query's ``need`` best items (one more when
    it excludes an item, which is then dropped); -1 pads missing hits."""
    extra = exclude is not None and bool((exclude >= 0).any())
    limit = int(need.max()) + extra
    hits = client.search(
        collection, data=unit, limit=limit, filter=expr, anns_field=VECTOR,
        search_params=search_params, output_fields=[],
    )
    ids = np.full((unit.shape[0], limit), -1, dtype=np.int64)
    sims = np.full((unit.shape[0], limit), -np.inf, dtype=np.float32)
    for i, h in enumerate(hits):  # pymilvus answers one object per query
        ids[i, :len(h.ids)] = np.asarray(h.ids, dtype=np.int64) & (MAX_ITEMS - 1)
        sims[i, :len(h.distances)] = h.distances
    if extra:
        ids[ids == exclude[:, None]] = -1
    return sims, ids


def read_range(client, collection, parts, start, stop, fields):
    """Columns ``fields`` of items ``start:stop`` (in ``parts``), in item
    order (lists)."""
    out = {f: [] for f in fields}
    for base, lo, hi in parts:
        for s in range(max(start, lo), min(stop, hi), _QUERY_BATCH):
            e = min(s + _QUERY_BATCH, stop, hi)
            got = client.query(collection, filter=part_range(base, s, e),
                               output_fields=["id", *fields], limit=e - s)
            if len(got) != e - s:
                raise ValueError(
                    f"the Milvus collection {collection!r} holds {len(got)} of "
                    f"the items {s}..{e - 1}: was it changed by someone else?"
                )
            order = np.argsort([r["id"] for r in got], kind="stable")
            for f in fields:
                out[f].extend(got[i][f] for i in order)
    return out
