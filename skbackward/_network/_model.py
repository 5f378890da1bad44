"""Torch modules of Backward Search and the loop that trains them.

Everything torch-specific about the networks lives here; estimators pass plain
arguments in and get numpy arrays (or CPU modules) back.
"""

import copy
import functools
import hashlib
import inspect
import math
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._utils._progress import ProgressBar
from .._utils._threads import torch_threads

# Layer sizes and dropout rates of the published model (Lee & Kim, PLoS ONE
# 2024; the user guide's page on the method).
HEAD_HIDDEN = (256, 128)
EMBEDDING_DROPOUT = 0.1
HEAD_DROPOUT = 0.4


class Dropout(nn.Module):
    """Dropout that draws its mask from a generator of its own.

    ``nn.Dropout`` draws from torch's global RNG, which threads share: two
    fits running at once would interleave their draws. :func:`train_network`
    hands every ``Dropout`` the fit's generator for the duration of training;
    outside training (eval mode) it is the identity. The mask is drawn on the
    generator's device and copied to the input's: a CPU generator gives the
    same masks, so the same fit, on a GPU as on the CPU (CUDA's generators
    draw other numbers from the same seed).
    """

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.generator = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        device = x.device if self.generator is None else self.generator.device
        keep = torch.empty(x.shape, dtype=x.dtype, device=device).bernoulli_(
            1 - self.p, generator=self.generator)
        return x * keep.to(x.device) / (1 - self.p)

    def extra_repr(self):
        return f"p={self.p}"


class EmbeddingHead(nn.Module):
    """Linear -> ReLU -> BN -> Dropout -> Linear -> BN -> tanh."""

    def __init__(self, n_features, embedding_dim):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.layers = nn.Sequential(
            nn.Linear(n_features, embedding_dim),
            nn.ReLU(),
            nn.BatchNorm1d(embedding_dim),
            Dropout(EMBEDDING_DROPOUT),
            nn.Linear(embedding_dim, embedding_dim),
            nn.BatchNorm1d(embedding_dim),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.layers(x)


def classifier_head(embedding_dim, n_classes):
    """One attribute's classifier on the embedding (logits out)."""
    h1, h2 = HEAD_HIDDEN
    return nn.Sequential(
        nn.Linear(embedding_dim, h1),
        nn.ReLU(),
        nn.BatchNorm1d(h1),
        Dropout(HEAD_DROPOUT),
        nn.Linear(h1, h2),
        nn.ReLU(),
        nn.BatchNorm1d(h2),
        Dropout(HEAD_DROPOUT),
        nn.Linear(h2, n_classes),
    )


class RetrievalNetwork(nn.Module):
    """The embedding head and one classifier head per attribute."""

    def __init__(self, n_features, n_classes, embedding_dim):
        super().__init__()
        self.embed = EmbeddingHead(n_features, embedding_dim)
        self.heads = nn.ModuleList(
            [classifier_head(embedding_dim, c) for c in n_classes]
        )

    def forward(self, x):
        z = self.embed(x)
        return z, [head(z) for head in self.heads]


def initialized(module_class, *args, seed):
    """``module_class(*args)`` initialised from ``seed`` alone.

    The module is built on the meta device (no draw from torch's global RNG,
    which other threads may be using), then every ``nn.Linear`` gets
    PyTorch's default initialisation drawn from a generator of its own:
    weights and biases uniform in +-1/sqrt(fan_in), which is what
    ``kaiming_uniform_(a=sqrt(5))`` gives. Normalisation layers get their
    deterministic defaults.
    """
    with torch.device("meta"):
        module = module_class(*args)
    module = module.to_empty(device="cpu")
    draws = make_generator(seed, torch.device("cpu"))
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                bound = 1 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=draws)
                layer.bias.uniform_(-bound, bound, generator=draws)
            elif isinstance(layer, nn.BatchNorm1d):
                layer.reset_parameters()
    return module


def build_network(n_features, n_classes, embedding_dim, seed):
    """A freshly initialised :class:`RetrievalNetwork`, reproducible by ``seed``."""
    return initialized(
        RetrievalNetwork, n_features, n_classes, embedding_dim, seed=seed
    )


def resolve_device(device):
    """``torch.device`` for a user string; "auto" picks CUDA when present."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available.")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was asked for, but there are "
            f"{torch.cuda.device_count()} CUDA device(s)."
        )
    return dev


def make_generator(seed, device):
    """A torch generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


def as_tensor(X, device, dtype=None):
    """A torch copy of a numpy array (copying also handles read-only memmaps).

    Torch cannot read negative strides (``X[::-1]``; numpy calls a reversed
    single row contiguous): those are copied first.
    """
    X = np.asarray(X)
    if any(stride < 0 for stride in X.strides):
        X = X.copy()
    return torch.tensor(X, device=device, dtype=dtype)


def frozen(module, dtype, device):
    """``module`` in eval mode, in ``dtype`` on ``device``, without grads.

    Fitted modules are stored that way already (float32, CPU, no grads): they
    are returned as they are, so a query costs no copy; other dtypes or
    devices get a converted copy.
    """
    p = next(module.parameters())
    if p.dtype == dtype and p.device == torch.device(device) and not p.requires_grad:
        return module.eval()
    module = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
    return module.requires_grad_(False)


def fit_network(X, codes, classes, *, embedding_dim, epochs, batch_size,
                learning_rate, weight_decay, lr_decay, seed, device, n_threads,
                verbose=0):
    """A :class:`RetrievalNetwork` built from ``seed`` and trained on ``X``.

    The unit a retriever's ``memory`` caches (``joblib.Memory.cache``, with
    ``verbose`` ignored): every argument that changes the trained weights is
    an argument here, so equal arguments give the same network. ``codes``
    (n, A) are the label codes of ``classes`` (one array per attribute);
    ``device`` a resolved device string; ``n_threads`` the intra-op threads
    training runs with (the last bits of the weights depend on it). Returns
    ``(network, loss_curve)``, the network on the CPU, frozen.
    """
    network = build_network(X.shape[1], [len(c) for c in classes],
                            embedding_dim, seed)
    with torch_threads(n_threads):
        losses = train_network(
            network, heads_loss, (X, codes), epochs=epochs,
            batch_size=batch_size, learning_rate=learning_rate,
            weight_decay=weight_decay, lr_decay=lr_decay, seed=seed,
            device=device, verbose=verbose,
        )
    return network, losses


@functools.cache
def network_code():
    """What decides a trained network besides :func:`fit_network`'s
    arguments: skbackward's and torch's versions and a hash of this
    module's source (the network, its initialisation and the training
    loop). Part of the key of a retriever's ``memory`` cache, so that an
    upgrade, or an edited checkout, never reads a network trained by
    other code."""
    # the top-level package's, already imported (no import cycle)
    version = sys.modules[__package__.partition(".")[0]].__version__
    source = inspect.getsource(sys.modules[__name__]).encode()
    return (f"skbackward {version}", f"torch {torch.__version__}",
            hashlib.sha256(source).hexdigest()[:16])


def keyed_fit_network(X, codes, classes, *, code, embedding_dim, epochs,
                      batch_size, learning_rate, weight_decay, lr_decay, seed,
                      device, n_threads, verbose=0):
    """:func:`fit_network`, with ``code`` (:func:`network_code`) as an
    argument only so that it is part of a ``memory`` cache's key (joblib
    keys on named arguments, hence no ``**kwargs``)."""
    return fit_network(
        X, codes, classes, embedding_dim=embedding_dim, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate,
        weight_decay=weight_decay, lr_decay=lr_decay, seed=seed, device=device,
        n_threads=n_threads, verbose=verbose,
    )


def heads_loss(network, x, codes):
    """Mean over attributes of the cross-entropy of each classifier head."""
    _, logits = network(x)
    return sum(F.cross_entropy(lg, codes[:, a]) for a, lg in enumerate(logits)) / len(
        logits
    )


def decay_step(epochs):
    """Epochs between two decays of the learning rate: a third of them (the
    published 30 epochs decay every 10)."""
    return max(1, epochs // 3)


def train_network(
    network, loss_fn, arrays, *, epochs, batch_size, learning_rate, weight_decay,
    lr_decay, seed, device, verbose=0, log_prefix="",
    diverged_hint="lower learning_rate or weight_decay, or scale X",
    dtype=torch.float32,
):
    """Train ``network`` by minibatch Adam on ``loss_fn(network, *batch)``.

    The loop of the paper's public model-building script: every epoch the
    rows are reshuffled and cut into minibatches of ``batch_size`` (the last,
    partial one kept), Adam with ``weight_decay`` takes one step per
    minibatch, and the learning rate is multiplied by ``lr_decay`` after
    every third of the epochs (``StepLR``; the published 30 epochs decay by
    0.1 every 10). One difference: a last minibatch of a single row is
    skipped, since BatchNorm cannot train on one sample (the published loop
    would stop with an error there).

    ``arrays`` are numpy arrays sharing their first dimension; each minibatch
    holds the same rows of all of them; floats are trained in ``dtype`` (the
    network's). The shuffling and every :class:`Dropout` mask come from
    generators seeded by ``seed``, never from torch's global RNG, so fits
    running in parallel threads are each reproducible. Returns the mean loss
    of each epoch. The network is returned to the CPU in eval mode so the
    estimator pickles anywhere. A non-finite loss raises a ValueError that
    ends with ``diverged_hint``. ``verbose``: 1 draws a progress bar over
    the epochs on stderr, 2 also a line per epoch with its mean loss.
    """
    dev = resolve_device(device)
    tensors = [
        _rows(a, dev, torch.int64 if a.dtype.kind in "iu" else dtype)
        for a in arrays
    ]
    n = tensors[0].shape[0]
    batch_size = min(batch_size, n)
    # both on the CPU whatever the device: the same seed draws the same
    # shuffles and masks, so a fit on a GPU matches the CPU's up to rounding
    shuffle = make_generator(seed, torch.device("cpu"))
    # one generator for every Dropout, drawn from in the forward order: each
    # module its own mask (a generator per module, equally seeded, gave all
    # heads the same masks)
    masks = make_generator(seed + 1, torch.device("cpu"))
    dropouts = [m for m in network.modules() if isinstance(m, Dropout)]
    for m in dropouts:
        m.generator = masks
    losses = []
    network.to(dev).train()
    optimizer = torch.optim.Adam(
        network.parameters(), lr=learning_rate, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=decay_step(epochs), gamma=lr_decay
    )
    bar = ProgressBar(epochs, f"{log_prefix}training", unit="epoch",
                      enabled=verbose >= 1)
    try:
        for epoch in range(epochs):
            tic = time.perf_counter()
            drawn = torch.randperm(n, generator=shuffle)
            # on the host too: a large array is read there without asking
            # the device for the rows of each minibatch
            order = (drawn.to(dev), drawn)
            # summed on the device, in float64 as Python would: reading each
            # minibatch's loss would stall a GPU at every step
            total = torch.zeros((), dtype=torch.float64, device=dev)
            seen = 0
            for start in range(0, n, batch_size):
                idx, host_idx = (o[start : start + batch_size] for o in order)
                if idx.shape[0] < 2:  # BatchNorm cannot train on one sample
                    break
                loss = loss_fn(network, *(
                    t[host_idx] if isinstance(t, _RowReader) else t[idx]
                    for t in tensors))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach().double() * idx.shape[0]
                seen += idx.shape[0]
            mean = total.item() / seen  # one read per epoch
            if not math.isfinite(mean):
                raise ValueError(
                    f"{log_prefix}training diverged: the loss became {mean} "
                    f"in epoch {epoch + 1}; {diverged_hint}."
                )
            scheduler.step()
            losses.append(mean)
            if verbose >= 2:
                bar.write(
                    f"{log_prefix}epoch {epoch + 1}/{epochs} loss={losses[-1]:.4f} "
                    f"({time.perf_counter() - tic:.2f}s)"
                )
            bar.update()
    finally:
        bar.close()
        for m in dropouts:  # generators do not pickle; the fitted model must
            m.generator = None
    # stored frozen: queries use the module as it is, and gradients through
    # it (search, amortized student) never accumulate in its weights
    network.cpu().eval().requires_grad_(False)
    return losses


# Arrays larger than this are read minibatch by minibatch (a memmap is never
# loaded whole); smaller ones are copied to the device once.
PRELOAD_BYTES = 2**28


class _RowReader:
    """The rows of a large (e.g. memory-mapped) array, read per minibatch
    (``idx``: a CPU tensor of row numbers)."""

    def __init__(self, array, device, dtype):
        self.array, self.device, self.dtype = array, device, dtype
        self.shape = array.shape

    def __getitem__(self, idx):
        return as_tensor(self.array[idx.numpy()], self.device, self.dtype)


def _rows(array, device, dtype):
    if array.nbytes > PRELOAD_BYTES:
        return _RowReader(array, device, dtype)
    return as_tensor(array, device, dtype)


def check_finite_network(network, X=None):
    """Raise a ValueError when training left non-finite weights or statistics.

    In float32, features of very large scale overflow the BatchNorm running
    variance (the model then maps every input to the same embedding), and a
    too large learning rate or weight decay overflows the weights.
    """
    bad = [
        name for name, t in network.state_dict().items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        scale = "" if X is None else f" (max |X| = {np.abs(X).max():.3g})"
        raise ValueError(
            f"training overflowed float32: non-finite {', '.join(bad[:3])}. "
            f"Scale X{scale}, e.g. with StandardScaler, or lower learning_rate "
            "or weight_decay."
        )


@torch.no_grad()
def predict_embedding(module, X, device, chunk_size=8192):
    """``module(X)`` in eval mode, in X's float dtype, as a numpy array.

    Computing in the input's dtype keeps each row's output independent of the
    other rows in the batch for float64 input (float32 matmuls may not be).
    """
    dev = resolve_device(device)
    module = frozen(module, torch_dtype(X.dtype), dev)
    out = [
        padded_forward(module, as_tensor(X[s : s + chunk_size], dev)).cpu().numpy()
        for s in range(0, X.shape[0], chunk_size)
    ]
    return np.concatenate(out) if out else np.empty((0,), X.dtype)


def embed(network, X, device):
    """The embeddings of features ``X`` by ``network`` (its ``embed``
    head), refusing features that overflow it."""
    Z = predict_embedding(network.embed, X, device)
    if not np.isfinite(Z).all():
        raise ValueError(
            f"X has values too large for the model (max |X| = "
            f"{np.abs(X).max():.3g}): its embedding overflowed in {X.dtype}. "
            "Scale X as in fit."
        )
    return Z


@torch.no_grad()
def predict_labels(network, Z, device):
    """Each classifier head's predicted class for embeddings ``Z``: (n, A)."""
    dev = resolve_device(device)
    dtype = torch_dtype(Z.dtype)
    z = as_tensor(Z, dev)
    out = [
        padded_forward(frozen(h, dtype, dev), z).argmax(1).cpu().numpy()
        for h in network.heads
    ]
    return np.stack(out, axis=1)


def padded_forward(module, *inputs, align=16):
    """``module(*inputs)`` (eval mode) with the rows padded by zeros to a
    multiple of ``align``.

    BLAS computes a matmul of 1-3 rows (or an odd number of rows per thread)
    by other kernels, which round float32 differently; padded, a row's output
    no longer depends on how many rows share its batch.
    """
    n = inputs[0].shape[0]
    pad = -n % align
    if pad:
        inputs = [torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]) for x in inputs]
    return module(*inputs)[:n]


def torch_dtype(np_dtype):
    """The torch float dtype matching a numpy float dtype (float32 otherwise)."""
    return torch.float64 if np_dtype == np.float64 else torch.float32
