"""The batched Backward Search against its definition (docs/user_guide.md §2)."""

import numpy as np
import pytest
import torch

from skbackward._model import build_network, frozen
from skbackward._search import backward_search, backward_search_reference

D = 16
N_CLASSES = (4, 3)


@pytest.fixture(scope="module")
def heads():
    """Two randomly initialised heads (float64, eval mode): the search only
    needs differentiable classifiers, trained or not."""
    net = build_network(5, list(N_CLASSES), D, seed=0)
    return [frozen(h, torch.float64, torch.device("cpu")) for h in net.heads]


def _problem(n, seed=0, attributes=(0,)):
    g = torch.Generator().manual_seed(seed)
    z0 = torch.rand(n, D, generator=g, dtype=torch.float64) * 2 - 1
    targets = torch.full((n, len(N_CLASSES)), -1, dtype=torch.int64)
    for a in attributes:
        targets[:, a] = torch.randint(N_CLASSES[a], (n,), generator=g)
    weights = (targets >= 0).to(torch.float64)
    return z0, targets, weights


def _search(heads, z0, targets, weights, alpha, reference=False, **kw):
    params = dict(alpha=alpha, lr=0.2, max_iter=100, patience=10) | kw
    fn = backward_search_reference if reference else backward_search
    return fn(heads, z0, targets, weights, **params)


def _predicted(heads, z, a):
    with torch.no_grad():
        return heads[a](z).argmax(1)


def test_huge_alpha_keeps_the_query(heads):
    z0, targets, weights = _problem(50)
    z, n_iter = _search(heads, z0, targets, weights, alpha=1e6)
    assert torch.equal(z, z0)
    # z0 is the best from the first step, so every query stops after patience
    assert n_iter == 10 + 2


def test_alpha_zero_reaches_the_condition(heads):
    z0, targets, weights = _problem(200)
    z, _ = _search(heads, z0, targets, weights, alpha=0.0)
    hit = (_predicted(heads, z, 0) == targets[:, 0]).double().mean()
    assert hit >= 0.95
    assert (_predicted(heads, z0, 0) == targets[:, 0]).double().mean() < 0.6


def test_multi_attribute_condition_satisfies_every_head(heads):
    z0, targets, weights = _problem(200, attributes=(0, 1))
    z, _ = _search(heads, z0, targets, weights, alpha=0.0)
    both = (_predicted(heads, z, 0) == targets[:, 0]) & (
        _predicted(heads, z, 1) == targets[:, 1]
    )
    assert both.double().mean() >= 0.95


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("attributes", [(0,), (0, 1)])
def test_batched_equals_per_query_loop_run_to_max_iter(heads, alpha, attributes):
    """The early exit and the dropping of frozen queries change nothing: the
    reference runs every query alone, for all max_iter steps."""
    z0, targets, weights = _problem(12, seed=1, attributes=attributes)
    z, _ = _search(heads, z0, targets, weights, alpha, max_iter=60)
    z_ref, _ = _search(heads, z0, targets, weights, alpha, reference=True, max_iter=60)
    np.testing.assert_allclose(z.numpy(), z_ref.numpy(), rtol=0, atol=1e-10)


def test_early_exit_stops_before_max_iter(heads):
    z0, targets, weights = _problem(30)
    _, n_iter = _search(heads, z0, targets, weights, alpha=0.5, max_iter=1000)
    assert n_iter < 1000


def test_rows_do_not_depend_on_the_batch(heads):
    z0, targets, weights = _problem(30, seed=2)
    z_all, _ = _search(heads, z0, targets, weights, 0.1)
    z_part, _ = _search(heads, z0[5:9], targets[5:9], weights[5:9], 0.1)
    np.testing.assert_allclose(z_all[5:9].numpy(), z_part.numpy(), rtol=0, atol=1e-10)


def test_unconditioned_queries_stay_put(heads):
    z0, targets, weights = _problem(10)
    targets[:4] = -1
    weights[:4] = 0
    z, _ = _search(heads, z0, targets, weights, alpha=0.0)
    assert torch.equal(z[:4], z0[:4])
    assert not torch.equal(z[4:], z0[4:])


def test_weights_are_relative(heads):
    z0, targets, weights = _problem(20, attributes=(0, 1))
    z1, _ = _search(heads, z0, targets, weights, 0.1)
    z3, _ = _search(heads, z0, targets, 3 * weights, 0.1)
    np.testing.assert_allclose(z1.numpy(), z3.numpy(), rtol=0, atol=1e-10)
    # but unequal weights favour the heavier attribute's head
    tilted = weights * torch.tensor([[100.0, 1.0]], dtype=torch.float64)
    zt, _ = _search(heads, z0, targets, tilted, 0.1)
    assert not torch.allclose(zt, z1)


def test_search_is_deterministic(heads):
    z0, targets, weights = _problem(25)
    a, _ = _search(heads, z0, targets, weights, 0.2)
    b, _ = _search(heads, z0, targets, weights, 0.2)
    assert torch.equal(a, b)


def test_last_iterate_runs_every_step_and_matches_a_plain_adam_loop(heads):
    from skbackward._search import last_iterate_search

    z0, targets, weights = _problem(8, seed=3)
    z, n_iter = last_iterate_search(heads, z0, targets, weights, alpha=0.3, lr=0.2,
                                    max_iter=25)
    assert n_iter == 25
    for i in range(8):  # each row as a single query in its own Adam loop
        zi = z0[i : i + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([zi], lr=0.2)
        for _ in range(25):
            loss = torch.nn.functional.cross_entropy(heads[0](zi), targets[i : i + 1, 0])
            loss = loss + 0.3 * (zi - z0[i : i + 1]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(z[i].numpy(), zi.detach()[0].numpy(), atol=1e-10)


def test_last_iterate_goes_further_than_the_best(heads):
    z0, targets, weights = _problem(50, seed=4)
    best, _ = _search(heads, z0, targets, weights, 0.3)
    from skbackward._search import last_iterate_search

    last, _ = last_iterate_search(heads, z0, targets, weights, alpha=0.3, lr=0.2,
                                  max_iter=100)
    assert (last - z0).abs().mean() > (best - z0).abs().mean()
