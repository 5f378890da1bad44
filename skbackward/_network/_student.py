"""The distilled student of Backward Search: network, random conditions, losses.

The student maps ``[z0, onehot(c_1), ..., onehot(c_K)]`` to the searched
embedding in one forward pass (the user guide's page on DistilledRetriever). An
attribute left unconstrained has an all-zero one-hot block.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ._search import attribute_use, query_losses


class StudentNetwork(nn.Module):
    """Linear -> sigmoid -> BN -> Linear -> sigmoid -> BN -> Linear -> tanh."""

    def __init__(self, embedding_dim, n_classes, hidden_dim):
        super().__init__()
        self.n_classes = list(n_classes)
        self.layers = nn.Sequential(
            nn.Linear(embedding_dim + sum(self.n_classes), hidden_dim),
            nn.Sigmoid(),
            nn.BatchNorm1d(hidden_dim),
            nn.Linear(hidden_dim, hidden_dim),
            nn.Sigmoid(),
            nn.BatchNorm1d(hidden_dim),
            nn.Linear(hidden_dim, embedding_dim),
            nn.Tanh(),
        )

    def forward(self, z0, targets):
        """``z0`` (n, D) and ``targets`` (n, A), -1 where unconstrained."""
        blocks = [
            F.one_hot(t.clamp_min(0), c).to(z0.dtype) * (t >= 0).unsqueeze(1)
            for t, c in zip(targets.T, self.n_classes)
        ]
        return self.layers(torch.cat([z0, *blocks], dim=1))


def draw_conditions(n, n_classes, generator):
    """Random conditions for ``n`` items: a random non-empty subset of the
    attributes, each with a uniformly random class; (n, A) int64, -1 elsewhere.

    Drawn from ``generator``, on its device.
    """
    n_attr = len(n_classes)
    device = generator.device
    # a uniform non-empty subset: an integer in [1, 2^A) read as a bit mask
    mask = torch.randint(1, 2**n_attr, (n,), device=device, generator=generator)
    bits = (mask.unsqueeze(1) >> torch.arange(n_attr, device=device)) & 1
    classes = torch.stack(
        [torch.randint(c, (n,), device=device, generator=generator) for c in n_classes],
        dim=1,
    )
    return torch.where(bits.bool(), classes, -1)


def distill_loss(l1_weight):
    """MSE to the teacher's z* (+ an optional L1 pull to z0), per batch."""

    def loss(student, z0, targets, z_star):
        out = student(z0, targets)
        value = F.mse_loss(out, z_star)
        if l1_weight:
            value = value + l1_weight * (out - z0).abs().mean()
        return value

    return loss


def amortized_loss(heads, alpha, n_classes, generator, preserved=(), keep_weight=0.0):
    """The Backward Search loss itself, on fresh random conditions per batch
    (drawn from ``generator``, a CPU one so that a GPU draws the same
    conditions, and copied to the device the student trains on).

    ``preserved``: indices of the attributes kept at the query's own
    predicted class when a condition leaves them out, weighted by
    ``keep_weight`` (the teacher's ``preserve``).
    """
    preserved = list(preserved)

    def loss(student, z0):
        drawn = draw_conditions(z0.shape[0], n_classes, generator)
        # which heads the loss needs, read from the drawn conditions on the
        # host: reading them back from the device would stall it every batch
        kept = torch.full_like(drawn, -1)
        kept[:, preserved] = torch.where(drawn[:, preserved] < 0, 0, -1)
        use = attribute_use(drawn >= 0, kept, keep_weight)
        targets = drawn.to(z0.device)
        weights = (targets >= 0).to(z0.dtype)
        keep = None
        if preserved:
            with torch.no_grad():
                own = torch.stack([heads[a](z0).argmax(1) for a in preserved], 1)
            keep = torch.full_like(targets, -1)
            keep[:, preserved] = torch.where(targets[:, preserved] < 0, own, -1)
        out = student(z0, targets)
        return query_losses(heads, out, z0, targets, weights, alpha, keep,
                            keep_weight, use=use).mean()

    return loss
