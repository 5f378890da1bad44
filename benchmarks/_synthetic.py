"""Synthetic class-structured features of the scale benchmarks.

Each row is the sum of the means of its classes on two attributes (10
"classes" and 4 "domains"), a rank-32 Gaussian mixture and isotropic noise,
so the heads have something to learn. Rows are generated in chunks of
``CHUNK``, each from its own seed, so a row does not depend on the size of the
database it belongs to (``bench_scale.py`` and ``bench_class_graphs.py``
share them).
"""

import numpy as np

N_CLASSES = (10, 4)  # two attributes: "class" and "domain"
CHUNK = 100_000


def generator(dim, seed=0):
    """Class means of both attributes and a low-rank mixing matrix."""
    rng = np.random.RandomState(seed)
    means = [rng.randn(c, dim).astype(np.float32) * 1.5 for c in N_CLASSES]
    mixing = (rng.randn(32, dim) / np.sqrt(32)).astype(np.float32)
    return means, mixing


def rows(start, stop, dim, params, seed):
    """Rows ``start:stop`` of the synthetic database (the same for every
    size) and their classes, shape (n, 2)."""
    means, mixing = params
    rng = np.random.RandomState([seed, start // CHUNK])
    n = stop - start
    y = np.stack([rng.randint(c, size=n) for c in N_CLASSES], axis=1)
    X = means[0][y[:, 0]] + means[1][y[:, 1]]
    X += rng.randn(n, mixing.shape[0]).astype(np.float32) @ mixing * 2.0
    X += rng.randn(n, dim).astype(np.float32) * 0.5
    return X.astype(np.float32), y


def make_memmap(path, n, dim, params, seed=0):
    """Write ``n`` rows in chunks to a float32 ``.npy`` file (plain file
    writes: no mapping holds its pages); the labels are not kept."""
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                       shape=(n, dim))
    offset = header.offset
    del header
    with open(path, "r+b") as f:
        for s in range(0, n, CHUNK):
            e = min(s + CHUNK, n)
            X, _ = rows(s, e, dim, params, seed)
            f.seek(offset + s * dim * 4)
            f.write(X.tobytes())


def queries(n, dim, params):
    """``n`` fresh query rows (far from the database's seeds) and a random
    condition class of attribute 0 for each."""
    Xq, _ = rows(10**9, 10**9 + n, dim, params, seed=7)
    cond = np.random.RandomState(1).randint(N_CLASSES[0], size=n)
    return Xq, cond
