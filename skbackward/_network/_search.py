"""Backward Search: move query embeddings until the heads predict the condition.

For every query, starting from its embedding ``z0``, Adam minimises

    L(z) = sum_a w_a CE(head_a(z), c_a) / sum_a w_a  +  alpha * mean_d |z - z0|

over ``z`` itself, with all network weights frozen (that is the published
loss). Keeping the query's other attributes (``preserve``, not in the paper)
adds ``keep_weight * mean_{a in P} CE(head_a(z), p_a)``, the query's own
predicted classes ``p_a`` of the preserved attributes ``P``. Which iterate is
returned is the *selection rule* (``select``):

- ``"published"``, the rule of the public implementation's batch routine. At
  step t = 1, 2, ...: compute ``L(z_{t-1})``; backward and Adam step, which
  makes ``z_t``; then every query whose stall counter is ``<= patience`` and
  whose best-so-far is ``>= L(z_{t-1})`` (ties update) stores ``z_t`` -- the
  iterate *after* the step -- sets its best to ``L(z_{t-1})`` and its counter
  to 0; any other query's counter grows by one, and past ``patience`` it never
  updates again. So ``z0`` is never the result, and the result is one Adam
  step beyond the lowest-loss iterate.
- ``"last"``: the iterate after ``max_steps`` steps; no counter, no early exit.

All queries run as one batch, exactly as the published batch routine does:
one Adam over the (n, D) tensor of queries, every row stepping at every
iteration (Adam is elementwise and the frozen heads are in eval mode, so a row
evolves as it would alone, up to the rounding of batched matrix products).
The vectorised counters replace the published per-query loop, and the loop
ends as soon as every counter has passed ``patience``: nothing can change
after that, so the result is that of running all ``max_steps`` steps.

On a GPU every value a step reads back to the host stalls the device until
the step is done, so the loop reads none: the state stays on the device,
updated by masks (never boolean indexing, which reads back the number of
rows it selects), and whether every counter has passed ``patience`` is read
only at the step where that can first be true (a query's counter passes it
``patience + 1`` steps after its last update), a few times per search.
"""

import numpy as np
import torch
from torch.nn import functional as F

from ._model import as_tensor, frozen, resolve_device, torch_dtype

SELECTION_RULES = ("published", "last")


def attribute_use(weights, keep=None, keep_weight=0.0):
    """Per attribute, ``(wanted, held)``: whether any query conditions on it,
    and whether any keeps its class (``keep``, when ``keep_weight > 0``).

    :func:`query_losses` skips the heads nobody needs. Reading this is a
    host-device copy: a search reads it once, not at every step.
    """
    wanted = (weights > 0).any(0).tolist()
    if keep is None or not keep_weight > 0:
        return [(w, False) for w in wanted]
    return list(zip(wanted, (keep >= 0).any(0).tolist()))


def query_losses(heads, z, z0, targets, weights, alpha, keep=None, keep_weight=0.0,
                 use=None):
    """Per-query loss L(z), shape (n,).

    ``keep`` (n, A): classes to keep per attribute (-1: none), weighted in
    total by ``keep_weight``; None (or a zero weight) is the published loss.
    ``use``: :func:`attribute_use` of ``weights`` and ``keep``, read from
    them when None.
    """
    keeping = keep is not None and keep_weight > 0
    if use is None:
        use = attribute_use(weights, keep, keep_weight)
    condition = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    kept, n_kept = torch.zeros_like(condition), torch.zeros_like(condition)
    for a, (head, (wanted, held)) in enumerate(zip(heads, use)):
        if not (wanted or held):  # nobody conditions on this attribute
            continue
        logits = head(z)
        if wanted:
            ce = F.cross_entropy(logits, targets[:, a].clamp_min(0), reduction="none")
            condition = condition + weights[:, a] * ce
        if held:
            on = (keep[:, a] >= 0).to(z.dtype)
            kept = kept + on * F.cross_entropy(logits, keep[:, a].clamp_min(0),
                                               reduction="none")
            n_kept = n_kept + on
    # clamp: an unconditioned query has zero weight sum and zero condition loss
    condition = condition / weights.sum(1).clamp_min(torch.finfo(z.dtype).tiny)
    loss = condition + alpha * (z - z0).abs().mean(1)
    if keeping:
        loss = loss + keep_weight * kept / n_kept.clamp_min(1)
    return loss


def backward_search(
    heads, z0, targets, weights, *, alpha, lr, max_steps, patience, select="published",
    keep=None, keep_weight=0.0,
):
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
    max_steps : int
        Most Adam steps.
    patience : int
        Steps without a stored iterate after which a query's counter has
        passed ``patience`` and it stops updating (not used by "last").
    select : {"published", "last"}
        The selection rule (module docstring).
    keep : torch.LongTensor of shape (n, A), default=None
        Classes to keep (the query's own predicted ones), -1 where none.
    keep_weight : float, default=0.0
        Weight of keeping them in the loss (:func:`query_losses`).

    Returns
    -------
    z_star : torch.Tensor of shape (n, D)
    n_steps : torch.LongTensor of shape (n,)
        Adam steps from ``z0`` to each query's ``z_star``.
    n_iter : int
        Adam steps run (the same for every row of the batch).
    """
    if select not in SELECTION_RULES:
        raise ValueError(f"select must be one of {SELECTION_RULES}; got {select!r}.")
    n = z0.shape[0]
    z0 = z0.detach()
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    best_z = z0.clone()
    best_loss = torch.full((n,), float("inf"), dtype=z0.dtype, device=z0.device)
    stall = torch.zeros(n, dtype=torch.int64, device=z0.device)
    n_steps = torch.zeros(n, dtype=torch.int64, device=z0.device)
    use = attribute_use(weights, keep, keep_weight)  # read once, not per step
    n_iter = 0
    # the first step at which every counter may have passed patience: none
    # passes it before step patience + 1 (without queries, nothing to wait for)
    check_at = patience + 1 if n else 1
    for step in range(1, max_steps + 1):
        loss = query_losses(heads, z, z0, targets, weights, alpha, keep, keep_weight,
                            use=use)
        optimizer.zero_grad()
        loss.sum().backward()  # rows are independent: d(sum)/dz_i = dL_i/dz_i
        optimizer.step()
        n_iter = step
        if select == "last":
            continue
        _keep_best(loss.detach(), z, best_z, best_loss, stall, n_steps, step, patience)
        if step >= check_at:
            # the counter of a query last updated at step u passes patience
            # at step u + patience + 1, and the latest u only grows: the
            # earliest step at which every counter has passed it (a
            # host-device read, a few per search; none without queries)
            last = int(n_steps.max()) if n else -patience - 1
            check_at = last + patience + 1
            if check_at <= step:
                break  # every counter has passed patience: nothing can change
    if select == "last":
        return z.detach(), torch.full_like(n_steps, n_iter), n_iter
    return best_z, n_steps, n_iter


@torch.no_grad()
def _keep_best(value, z, best_z, best_loss, stall, n_steps, step, patience):
    """One update of the published selection rule, in place on the state.

    A query whose counter is within ``patience`` and whose best loss is
    ``>= value`` (the loss of the iterate before the step; ties update)
    stores the current ``z``, found after ``step`` steps; any other query's
    counter grows by one.
    """
    update = (stall <= patience) & (best_loss >= value)
    # masks, not boolean indexing: indexing reads the number of selected
    # rows back to the host (a device sync per step)
    best_z.copy_(torch.where(update.unsqueeze(1), z.detach(), best_z))
    best_loss.copy_(torch.where(update, value, best_loss))
    n_steps.masked_fill_(update, step)
    stall.add_(1).masked_fill_(update, 0)


# Queries searched together: bounds the working memory (z, its gradient and
# Adam's two moments) and how many rows one slow query keeps stepping.
SEARCH_BATCH = 4096


def search_embeddings(network, z0, targets, weights, *, device, keep=None,
                      **params):
    """Backward Search on numpy arrays, in batches of ``SEARCH_BATCH`` queries.

    ``params`` are ``alpha, lr, max_steps, patience, select, keep_weight`` of
    :func:`backward_search`; ``keep`` (n, A) ints or None. Returns
    ``(z_star, n_steps)`` as numpy arrays, ``z_star`` in ``z0``'s dtype.
    """
    dev = resolve_device(device)
    dtype = torch_dtype(z0.dtype)
    heads = [frozen(h, dtype, dev) for h in network.heads]
    z_star = np.empty_like(z0)
    n_steps = np.empty(z0.shape[0], dtype=np.int64)
    for start in range(0, z0.shape[0], SEARCH_BATCH):
        rows = slice(start, start + SEARCH_BATCH)
        z, steps, _ = backward_search(
            heads,
            as_tensor(z0[rows], dev),
            as_tensor(targets[rows], dev, torch.int64),
            as_tensor(weights[rows], dev, dtype),
            keep=None if keep is None else as_tensor(keep[rows], dev, torch.int64),
            **params,
        )
        z_star[rows], n_steps[rows] = z.cpu().numpy(), steps.cpu().numpy()
    return z_star, n_steps
