"""Backward Search: move query embeddings until the heads predict the condition.

For every query, starting from its embedding ``z0``, Adam minimises

    L(z) = sum_a w_a CE(head_a(z), c_a) / sum_a w_a  +  alpha * mean_d |z - z0|

over ``z`` itself, with all network weights frozen (docs/user_guide.md §2). Each query
keeps the ``z`` with the lowest ``L`` seen; a query whose ``L`` has not improved
for more than ``patience`` steps is frozen.

:func:`backward_search` runs all queries as one batch: the best-so-far and
patience are tensors, frozen queries are dropped from the batch, and the loop
ends when none is left. Adam is elementwise, so each row evolves exactly as it
would alone. :func:`backward_search_reference` is the plain per-query loop of
the published code, kept to check and benchmark the batched one against.
"""

import torch
from torch.nn import functional as F

from ._model import as_tensor, frozen, resolve_device, torch_dtype


def query_losses(heads, z, z0, targets, weights, alpha):
    """Per-query loss L(z), shape (n,)."""
    condition = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for a, head in enumerate(heads):
        w = weights[:, a]
        if not bool((w > 0).any()):  # nobody conditions on this attribute
            continue
        ce = F.cross_entropy(head(z), targets[:, a].clamp_min(0), reduction="none")
        condition = condition + w * ce
    # clamp: an unconditioned query has zero weight sum and zero condition loss
    condition = condition / weights.sum(1).clamp_min(torch.finfo(z.dtype).tiny)
    return condition + alpha * (z - z0).abs().mean(1)


def _slice_adam(optimizer, param, keep):
    """A new Adam over ``param[keep]`` carrying the kept rows' Adam state."""
    old = optimizer.state[param]
    new_param = param.detach()[keep].requires_grad_(True)
    new = torch.optim.Adam([new_param], **optimizer.defaults)
    if old:
        new.state[new_param] = {
            "step": old["step"].clone(),
            "exp_avg": old["exp_avg"][keep].clone(),
            "exp_avg_sq": old["exp_avg_sq"][keep].clone(),
        }
    return new, new_param


def backward_search(heads, z0, targets, weights, *, alpha, lr, max_iter, patience):
    """Batched Backward Search.

    Parameters
    ----------
    heads : list of torch.nn.Module
        Frozen classifier heads in eval mode, one per attribute.
    z0 : torch.Tensor of shape (n, D)
        Query embeddings.
    targets : torch.LongTensor of shape (n, A)
        Wanted class per attribute, -1 where unconstrained.
    weights : torch.Tensor of shape (n, A)
        Condition weights, 0 where unconstrained.
    alpha, lr : float
        L1 weight (the paper's lambda) and Adam's learning rate.
    max_iter, patience : int

    Returns
    -------
    z_best : torch.Tensor of shape (n, D)
    n_iter : int
        Loss evaluations made by the longest-running query.
    """
    n = z0.shape[0]
    best_z = z0.detach().clone()
    best_loss = torch.full((n,), float("inf"), dtype=z0.dtype, device=z0.device)
    stall = torch.zeros(n, dtype=torch.int64, device=z0.device)
    active = torch.arange(n, device=z0.device)
    z = z0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    z0_a, targets_a, weights_a = z0, targets, weights
    n_iter = 0
    for step in range(max_iter):
        n_iter = step + 1
        loss = query_losses(heads, z, z0_a, targets_a, weights_a, alpha)
        with torch.no_grad():
            improved = loss < best_loss[active]
            rows = active[improved]
            best_loss[rows] = loss[improved]
            best_z[rows] = z[improved]
            stall[active] = torch.where(improved, 0, stall[active] + 1)
            keep = stall[active] <= patience
        if step == max_iter - 1 or not bool(keep.any()):
            break
        optimizer.zero_grad()
        loss.sum().backward()  # rows are independent: d(sum)/dz_i = dL_i/dz_i
        optimizer.step()
        if not bool(keep.all()):
            optimizer, z = _slice_adam(optimizer, z, keep)
            active, z0_a = active[keep], z0_a[keep]
            targets_a, weights_a = targets_a[keep], weights_a[keep]
    return best_z, n_iter


def last_iterate_search(heads, z0, targets, weights, *, alpha, lr, max_iter, **_):
    """Backward Search that returns the iterate after ``max_iter`` Adam steps.

    Not the published rule, which keeps each query's lowest-loss ``z``: on
    overconfident heads that point lies just across the decision boundary,
    where the heads are fooled but few database items of the class are. The
    last iterate has followed Adam's momentum deeper into the class region.
    Every query runs all steps (no patience, no early exit). Same arguments
    and result as :func:`backward_search`.
    """
    z = z0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(max_iter):
        loss = query_losses(heads, z, z0, targets, weights, alpha)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    return z.detach(), max_iter


def backward_search_reference(heads, z0, targets, weights, *, alpha, lr, max_iter, patience):
    """Per-query loop over :func:`backward_search`'s algorithm, as published.

    One Adam per query and a Python loop over queries; every query runs all
    ``max_iter`` steps (its best stops changing once it is frozen). Same
    arguments and result as :func:`backward_search`; kept only as the
    reference for tests and benchmarks.
    """
    out = z0.detach().clone()
    for i in range(z0.shape[0]):
        z = z0[i : i + 1].detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        best, stall = float("inf"), 0
        for _ in range(max_iter):
            loss = query_losses(heads, z, z0[i : i + 1], targets[i : i + 1],
                                 weights[i : i + 1], alpha)
            if stall <= patience:
                if loss.item() < best:
                    best, stall = loss.item(), 0
                    out[i] = z.detach()[0]
                else:
                    stall += 1
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
    return out, max_iter


_SEARCHES = {"best": backward_search, "last": last_iterate_search}


def search_embeddings(
    network, z0, targets, weights, *, device, select="best", reference=False, **params
):
    """Backward Search on numpy arrays; returns z* in ``z0``'s dtype.

    ``params`` are ``alpha, lr, max_iter, patience``. ``select`` picks the
    lowest-loss iterate ("best", published) or the last one ("last").
    ``reference=True`` runs the published per-query loop instead.
    """
    dev = resolve_device(device)
    dtype = torch_dtype(z0.dtype)
    heads = [frozen(h, dtype, dev) for h in network.heads]
    search = backward_search_reference if reference else _SEARCHES[select]
    z, _ = search(
        heads,
        as_tensor(z0, dev),
        as_tensor(targets, dev, torch.int64),
        as_tensor(weights, dev, dtype),
        **params,
    )
    return z.detach().cpu().numpy()
