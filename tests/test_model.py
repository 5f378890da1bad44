"""The training loop (skbackward._network._model): the published recipe, its
randomness."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from skbackward._network import _model
from skbackward._network._model import (
    Dropout,
    build_network,
    heads_loss,
    make_generator,
    train_network,
)

from .conftest import HostReads


def test_every_dropout_draws_its_own_mask():
    # two heads of the same shape: with a generator per module, seeded alike,
    # both drew the same masks at every step
    network = build_network(8, [3, 3], 16, seed=0)
    masks = {}

    def record(module, inputs, output):
        masks.setdefault(id(module), []).append(
            (output == 0).numpy().copy())

    dropouts = [m for m in network.modules() if isinstance(m, Dropout)]
    for m in dropouts:
        m.register_forward_hook(record)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 8)).astype(np.float32)
    codes = rng.randint(3, size=(64, 2))
    train_network(network, heads_loss, (X, codes), epochs=1, batch_size=32,
                  learning_rate=1e-3, weight_decay=0.0, lr_decay=1.0, seed=0,
                  device="cpu")
    head0, head1 = (network.heads[a] for a in (0, 1))
    for m0, m1 in zip(
        [m for m in head0.modules() if isinstance(m, Dropout)],
        [m for m in head1.modules() if isinstance(m, Dropout)],
    ):
        assert len(masks[id(m0)]) == 2  # one mask per minibatch
        for a, b in zip(masks[id(m0)], masks[id(m1)]):
            assert a.shape == b.shape and not np.array_equal(a, b)


def test_training_leaves_torch_s_global_rng_alone():
    network = build_network(8, [3], 16, seed=0)
    X = np.random.RandomState(0).normal(size=(32, 8)).astype(np.float32)
    state = torch.get_rng_state()
    train_network(network, heads_loss, (X, np.zeros((32, 1), int) + [0]),
                  epochs=1, batch_size=16, learning_rate=1e-3, weight_decay=0.0,
                  lr_decay=1.0, seed=0, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)


def published_loop(network, X, codes, *, seed, epochs, step_size,
                   skip_one=False):
    """A plain transcription of the paper's public training loop
    (B1.BuildModel.py and ``epoch_run`` in src/utils.py): Adam(lr 0.01,
    weight decay 1e-6), StepLR(step_size, 0.1), every epoch a reshuffled
    DataLoader of batch 64 whose last partial batch is kept, the loss the
    mean of the attributes' cross-entropies. The batch order and dropout
    masks come from the same seeds as skbackward's loop (the published code
    draws them from torch's global RNG). ``skip_one``: leave out a last batch
    of one row, which the published loop cannot train on."""
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01, weight_decay=1e-6)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size,
                                                gamma=0.1)
    criterion = nn.CrossEntropyLoss()
    shuffle = make_generator(seed, torch.device("cpu"))
    masks = make_generator(seed + 1, torch.device("cpu"))
    for m in network.modules():
        if isinstance(m, Dropout):
            m.generator = masks
    X, codes = torch.from_numpy(X), torch.from_numpy(codes)
    for _ in range(1, epochs + 1):
        network.train()
        order = torch.randperm(len(X), generator=shuffle)
        for start in range(0, len(X), 64):
            idx = order[start:start + 64]
            if skip_one and len(idx) == 1:
                break
            _, out = network(X[idx])
            losses = [criterion(o, codes[idx, a]) for a, o in enumerate(out)]
            loss = 0
            for value in losses:
                loss += value / len(losses)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return network


@pytest.mark.parametrize("n", [200, 193])  # 193 = 3 * 64 + 1: a batch of one
def test_training_is_the_published_loop(n):
    # float64, so that equal arithmetic gives equal weights to 1e-10
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 12))
    codes = np.column_stack([rng.randint(4, size=n), rng.randint(3, size=n)])
    ours = build_network(12, [4, 3], 16, seed=3).double()
    theirs = copy.deepcopy(ours)
    # 2 epochs: the schedule decays after every third of them, i.e. each epoch
    train_network(ours, heads_loss, (X, codes), epochs=2, batch_size=64,
                  learning_rate=0.01, weight_decay=1e-6, lr_decay=0.1, seed=3,
                  device="cpu", dtype=torch.float64)
    if n % 64 == 1:
        # the published loop cannot pass one row through BatchNorm in
        # training; ours leaves that batch out and changes nothing else
        with pytest.raises(ValueError, match="Expected more than 1 value"):
            published_loop(copy.deepcopy(theirs), X, codes, seed=3, epochs=2,
                           step_size=1)
    published_loop(theirs, X, codes, seed=3, epochs=2, step_size=1,
                   skip_one=n % 64 == 1)
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == ref.keys()
    for name in mine:
        np.testing.assert_allclose(mine[name].numpy(), ref[name].numpy(),
                                   rtol=0, atol=1e-10, err_msg=name)


def test_dropout_draws_its_mask_on_the_generator_s_device():
    """The fit's generator is a CPU one, on every device: the masks are
    drawn there and copied to the input's device, so a GPU draws the same
    masks (CUDA's generators give other numbers for the same seed). The meta
    device stands in for a GPU here."""
    dropout = Dropout(0.4).train()
    states = []
    for device in ("cpu", "meta"):
        dropout.generator = make_generator(0, torch.device("cpu"))
        out = dropout(torch.ones(8, 16, device=device))
        assert out.device.type == device
        states.append(dropout.generator.get_state())
    assert torch.equal(*states)  # the same draws, whichever device


@pytest.mark.parametrize("preload", [True, False])
def test_training_reads_the_loss_back_once_per_epoch(preload, monkeypatch):
    """The minibatch losses are summed on the device: a GPU is not stalled
    at every step to read one back (HostReads counts the reads). Nor are
    the rows of a large array, read minibatch by minibatch from the host
    (preload False), asked of the device."""
    if not preload:
        monkeypatch.setattr(_model, "PRELOAD_BYTES", 0)
    network = build_network(8, [3], 16, seed=0)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(160, 8)).astype(np.float32)
    codes = rng.randint(3, size=(160, 1))
    with HostReads() as reads:
        curve = train_network(network, heads_loss, (X, codes), epochs=3,
                              batch_size=16, learning_rate=1e-3,
                              weight_decay=0.0, lr_decay=1.0, seed=0,
                              device="cpu")
    assert len(curve) == 3
    # 10 minibatches per epoch; the host's row numbers are read as numpy
    reads = [c for c in reads.calls if not (c[0] == "numpy" and c[3] == "__getitem__")]
    assert len(reads) == 3, reads
