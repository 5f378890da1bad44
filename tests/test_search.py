"""The batched Backward Search against plain transcriptions of its definition.

The published selection rule (DESIGN.md §2.2), per query, at step t = 1..max_steps:
1. L = L(z_{t-1});  2. backward, Adam step -> z_t;
3. if counter <= patience and best >= L (ties update): keep z_t, best = L,
   counter = 0; else counter += 1.
The transcriptions below are written from that text, a query at a time, and
live here (test-only code) to check ``skbackward._network._search`` against.
"""

import numpy as np
import pytest
import torch
from torch import nn

from skbackward._network._model import build_network, frozen
from skbackward._network._search import _keep_best, backward_search, query_losses

from .conftest import HostReads

D = 16
N_CLASSES = (4, 3)
PARAMS = dict(lr=0.2, max_steps=100, patience=10)


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


def _search(heads, z0, targets, weights, alpha, **kw):
    return backward_search(heads, z0, targets, weights, alpha=alpha, **(PARAMS | kw))


# ---- transcriptions of the published rule ------------------------------------------


def published_batch_routine(heads, z0, targets, weights, *, alpha, lr, max_steps,
                            patience):
    """The published batch routine: one Adam over all queries, all max_steps
    steps, a Python loop over the queries for the selection (step 3)."""
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    result, n_steps = z0.clone(), [0] * z0.shape[0]
    best, counter = [float("inf")] * z0.shape[0], [0] * z0.shape[0]
    for step in range(1, max_steps + 1):
        loss = query_losses(heads, z, z0, targets, weights, alpha)  # 1.
        optimizer.zero_grad()
        loss.sum().backward()  # 2.
        optimizer.step()
        for i in range(z0.shape[0]):  # 3.
            if counter[i] <= patience and best[i] >= loss[i].item():
                result[i] = z.detach()[i]
                best[i], counter[i], n_steps[i] = loss[i].item(), 0, step
            else:
                counter[i] += 1
    return result, torch.tensor(n_steps)


def per_query_loop(heads, z0, targets, weights, *, alpha, lr, max_steps, patience):
    """The same three steps for each query alone, with its own Adam."""
    results, steps = [], []
    for i in range(z0.shape[0]):
        row = slice(i, i + 1)
        z = z0[row].clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        result, n_steps, best, counter = z0[row].clone(), 0, float("inf"), 0
        for step in range(1, max_steps + 1):
            loss = query_losses(heads, z, z0[row], targets[row], weights[row], alpha)
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
            if counter <= patience and best >= loss.item():
                result, best = z.detach().clone(), loss.item()
                counter, n_steps = 0, step
            else:
                counter += 1
        results.append(result)
        steps.append(n_steps)
    return torch.cat(results), torch.tensor(steps)


# ---- the published rule, exactly ---------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.5, 3.0])
@pytest.mark.parametrize("attributes", [(0,), (0, 1)])
def test_bit_for_bit_the_published_batch_routine(heads, alpha, attributes):
    """Early exit and vectorised counters change nothing, to the last bit."""
    z0, targets, weights = _problem(23, seed=1, attributes=attributes)
    z, n_steps, n_iter = _search(heads, z0, targets, weights, alpha, max_steps=60)
    z_ref, steps_ref = published_batch_routine(
        heads, z0, targets, weights, alpha=alpha, **(PARAMS | {"max_steps": 60})
    )
    assert torch.equal(z, z_ref)
    assert torch.equal(n_steps, steps_ref)
    assert n_iter <= 60


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_equals_each_query_searched_alone(heads, alpha):
    """A query alone keeps the same iterate; the values agree up to the
    rounding of batched matrix products (BLAS sums a row differently in a
    batch of one)."""
    z0, targets, weights = _problem(12, seed=2, attributes=(0, 1))
    z, n_steps, _ = _search(heads, z0, targets, weights, alpha, max_steps=60)
    z_ref, steps_ref = per_query_loop(
        heads, z0, targets, weights, alpha=alpha, **(PARAMS | {"max_steps": 60})
    )
    assert torch.equal(n_steps, steps_ref)
    np.testing.assert_allclose(z.numpy(), z_ref.numpy(), rtol=0, atol=1e-10)


def test_the_selection_step_on_scripted_losses():
    """Step 3 alone, on loss sequences with ties, improvements and stalls,
    against the rule as written (patience 2)."""
    losses = torch.tensor([
        [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0],  # ties keep updating
        [5.0, 6.0, 7.0, 8.0, 1.0, 0.5, 0.1],  # 3 misses: frozen before the 1.0
        [5.0, 6.0, 7.0, 4.0, 9.0, 9.0, 9.0],  # 2 misses, then an update
        [1.0, 1.0, 2.0, 2.0, 2.0, 0.0, 0.0],  # tie, then frozen
    ], dtype=torch.float64)
    n, T = losses.shape
    best_z, z = torch.zeros(n, 1), torch.zeros(n, 1)
    best = torch.full((n,), float("inf"), dtype=torch.float64)
    stall = torch.zeros(n, dtype=torch.int64)
    n_steps = torch.zeros(n, dtype=torch.int64)
    for t in range(T):
        z.fill_(t + 1)  # the iterate after step t + 1
        _keep_best(losses[:, t], z, best_z, best, stall, n_steps, t + 1, 2)
    assert n_steps.tolist() == [7, 1, 4, 2]
    assert best_z[:, 0].tolist() == [7.0, 1.0, 4.0, 2.0]
    assert best.tolist() == [3.0, 5.0, 4.0, 1.0]
    assert stall.tolist() == [0, 6, 3, 5]


def test_max_steps_one_takes_one_step(heads):
    z0, targets, weights = _problem(9, seed=3)
    z, n_steps, n_iter = _search(heads, z0, targets, weights, 0.3, max_steps=1)
    assert n_iter == 1 and n_steps.tolist() == [1] * 9
    # exactly one Adam step from z0
    z1 = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z1], lr=0.2)
    query_losses(heads, z1, z0, targets, weights, 0.3).sum().backward()
    opt.step()
    assert torch.equal(z, z1.detach())


def test_z0_is_never_the_result(heads):
    """Even when no step lowers the loss, the result is the first iterate."""
    z0, targets, weights = _problem(20, seed=4)
    z, n_steps, _ = _search(heads, z0, targets, weights, alpha=1e6)
    assert (n_steps >= 1).all()
    assert not torch.equal(z, z0)
    np.testing.assert_allclose(z.numpy(), z0.numpy(), atol=0.2 + 1e-12)  # one step


def _flat_heads():
    """Heads whose logits do not depend on z: constant loss, zero gradient."""
    head = nn.Linear(D, 3).double()
    with torch.no_grad():
        head.weight.zero_()
    return [head.eval().requires_grad_(False)]


def test_ties_update_and_keep_the_counter_at_zero():
    """With a constant loss every step ties: each stores its iterate, no
    counter grows, so the search runs all max_steps steps."""
    z0 = torch.rand(5, D, dtype=torch.float64)
    targets, weights = torch.zeros(5, 1, dtype=torch.int64), torch.ones(5, 1)
    z, n_steps, n_iter = backward_search(_flat_heads(), z0, targets, weights.double(),
                                         alpha=0.0, lr=0.2, max_steps=40, patience=3)
    assert n_iter == 40 and n_steps.tolist() == [40] * 5
    assert torch.equal(z, z0)  # zero gradient: Adam does not move z


def test_early_exit_once_every_counter_passed_patience(heads):
    z0, targets, weights = _problem(30)
    _, n_steps, n_iter = _search(heads, z0, targets, weights, alpha=0.5, max_steps=1000)
    assert n_iter < 1000
    assert n_iter == int(n_steps.max()) + 10 + 1  # the last update, then patience + 1


# ---- on a GPU: the loop reads nothing back per step ---------------------------------


def _host_reads(heads, problem, **params):
    with HostReads() as reads:
        _, _, n_iter = _search(heads, *problem, **params)
    return reads.calls, n_iter


@pytest.mark.parametrize("select", ["published", "last"])
def test_the_search_loop_reads_nothing_back_per_step(heads, select):
    """The state stays on the device: no value is read back to the host at
    each step (each read would stall a GPU), so a search of 80 steps reads
    as often as one of 20: at the start, and once to see that no query can
    stop before max_steps (patience 1000)."""
    problem = _problem(23, seed=1, attributes=(0, 1))
    counts = []
    for max_steps in (20, 80):
        calls, n_iter = _host_reads(heads, problem, alpha=0.5, max_steps=max_steps,
                                    patience=1000, select=select)
        assert n_iter == max_steps
        counts.append(len(calls))
    assert counts[0] == counts[1] <= 3, calls


def test_early_exit_reads_back_a_few_times_per_search(heads):
    """Whether every counter has passed patience is read only at the step
    where that can first be true (patience + 1 steps after the latest
    update known so far): about once per patience + 1 steps, not at every
    step, and the loop still stops at the step where it first is true."""
    problem = _problem(30)
    calls, n_iter = _host_reads(heads, problem, alpha=0.5, max_steps=1000)
    _, n_steps, _ = _search(heads, *problem, alpha=0.5, max_steps=1000)
    assert n_iter == int(n_steps.max()) + PARAMS["patience"] + 1
    assert n_iter > 4 * (PARAMS["patience"] + 1)  # long enough to tell
    assert len(calls) <= 2 + 2 * n_iter // (PARAMS["patience"] + 1), calls


def test_an_empty_batch_stops_at_once(heads):
    z0, targets, weights = _problem(0)
    z, n_steps, n_iter = _search(heads, z0, targets, weights, alpha=0.5)
    assert z.shape == (0, D) and n_steps.shape == (0,) and n_iter == 1


# ---- behaviour ---------------------------------------------------------------------


def _predicted(heads, z, a):
    with torch.no_grad():
        return heads[a](z).argmax(1)


def test_alpha_zero_reaches_the_condition(heads):
    z0, targets, weights = _problem(200)
    z, _, _ = _search(heads, z0, targets, weights, alpha=0.0)
    hit = (_predicted(heads, z, 0) == targets[:, 0]).double().mean()
    assert hit >= 0.95
    assert (_predicted(heads, z0, 0) == targets[:, 0]).double().mean() < 0.6


def test_multi_attribute_condition_satisfies_every_head(heads):
    z0, targets, weights = _problem(200, attributes=(0, 1))
    z, _, _ = _search(heads, z0, targets, weights, alpha=0.0)
    both = (_predicted(heads, z, 0) == targets[:, 0]) & (
        _predicted(heads, z, 1) == targets[:, 1]
    )
    assert both.double().mean() >= 0.95


def test_rows_do_not_depend_on_the_batch(heads):
    z0, targets, weights = _problem(30, seed=2)
    z_all, steps_all, _ = _search(heads, z0, targets, weights, 0.1)
    z_part, steps_part, _ = _search(heads, z0[5:9], targets[5:9], weights[5:9], 0.1)
    assert torch.equal(steps_all[5:9], steps_part)
    np.testing.assert_allclose(z_all[5:9].numpy(), z_part.numpy(), rtol=0, atol=1e-10)


def test_weights_are_relative(heads):
    z0, targets, weights = _problem(20, attributes=(0, 1))
    z1, _, _ = _search(heads, z0, targets, weights, 0.1)
    z3, _, _ = _search(heads, z0, targets, 3 * weights, 0.1)
    np.testing.assert_allclose(z1.numpy(), z3.numpy(), rtol=0, atol=1e-10)
    # but unequal weights favour the heavier attribute's head
    tilted = weights * torch.tensor([[100.0, 1.0]], dtype=torch.float64)
    zt, _, _ = _search(heads, z0, targets, tilted, 0.1)
    assert not torch.allclose(zt, z1)


def test_search_is_deterministic(heads):
    z0, targets, weights = _problem(25)
    a, _, _ = _search(heads, z0, targets, weights, 0.2)
    b, _, _ = _search(heads, z0, targets, weights, 0.2)
    assert torch.equal(a, b)


def test_last_iterate_runs_every_step_and_matches_a_plain_adam_loop(heads):
    z0, targets, weights = _problem(8, seed=3)
    z, n_steps, n_iter = _search(heads, z0, targets, weights, 0.3, max_steps=25,
                                 select="last")
    assert n_iter == 25 and n_steps.tolist() == [25] * 8
    for i in range(8):  # each row as a single query in its own Adam loop
        zi = z0[i : i + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([zi], lr=0.2)
        for _ in range(25):
            target = targets[i : i + 1, 0]
            loss = torch.nn.functional.cross_entropy(heads[0](zi), target)
            loss = loss + 0.3 * (zi - z0[i : i + 1]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(z[i].numpy(), zi.detach()[0].numpy(), atol=1e-10)


def test_unknown_selection_rule(heads):
    z0, targets, weights = _problem(3)
    with pytest.raises(ValueError, match="select must be one of"):
        _search(heads, z0, targets, weights, 0.3, select="best")


# ---- keeping the query's other attributes (preserve) -------------------------------


def test_no_keep_is_the_published_loss_bit_for_bit(heads):
    z0, targets, weights = _problem(15, seed=6)
    keep = torch.full_like(targets, -1)
    keep[:, 1] = 2
    z, steps, _ = _search(heads, z0, targets, weights, 0.3)
    for kw in (dict(keep=None, keep_weight=1.0), dict(keep=keep, keep_weight=0.0)):
        z_k, steps_k, _ = _search(heads, z0, targets, weights, 0.3, **kw)
        assert torch.equal(z_k, z) and torch.equal(steps_k, steps)


def test_keep_adds_the_mean_cross_entropy_of_the_kept_classes(heads):
    z0, targets, weights = _problem(6, seed=7, attributes=(0,))
    z = z0 + 0.3
    keep = torch.full_like(targets, -1)
    keep[:4, 1] = torch.tensor([0, 1, 2, 0])
    base = query_losses(heads, z, z0, targets, weights, 0.2)
    with_keep = query_losses(heads, z, z0, targets, weights, 0.2, keep, 0.7)
    ce = torch.nn.functional.cross_entropy(heads[1](z[:4]), keep[:4, 1],
                                           reduction="none")
    torch.testing.assert_close(with_keep[:4], base[:4] + 0.7 * ce, rtol=0, atol=1e-12)
    assert torch.equal(with_keep[4:], base[4:])  # nothing kept there


def test_keeping_holds_the_other_head_at_its_class(heads):
    z0, targets, weights = _problem(200, seed=8, attributes=(0,))
    own = _predicted(heads, z0, 1)
    keep = torch.full_like(targets, -1)
    keep[:, 1] = own
    free, _, _ = _search(heads, z0, targets, weights, 0.0)
    kept, _, _ = _search(heads, z0, targets, weights, 0.0, keep=keep, keep_weight=1.0)
    held = (_predicted(heads, kept, 1) == own).double().mean()
    assert held > (_predicted(heads, free, 1) == own).double().mean()
    assert held >= 0.9
    assert (_predicted(heads, kept, 0) == targets[:, 0]).double().mean() >= 0.9
