"""Losses of LIB ("Exposing the Deception: Uncovering More Forgery Clues for Deepfake Detection").

All functions are pure (no module state) and work on logits of shape (B, C), C = 2 here,
class 1 = fake. Distributions are tempered softmaxes ``softmax(z / T)``; the teacher side
(``p(y | f_all)``) is always detached, so the information losses only move the student heads.

- :func:`kl_per_sample` / :func:`tempered_kl`: KL(p || q) = sum_c p_c (log p_c - log q_c), in nats,
  averaged over the batch.
- :func:`sinkhorn_distance`: entropic optimal transport cost between two class distributions with
  the 0/1 ground cost (|i - j| for two classes), the Wasserstein option of ``mi_calculator``.
- :func:`global_information_loss`: D( p_all.detach() || p_G ) (keeps G as informative as all
  local features together).
- :func:`local_information_loss`: exp( - sum_i D( p_all.detach() || p_without_i ) ): small when
  leaving out any one block changes the prediction, i.e. when every block carries its own clue.
- :func:`uncertainty_weighted` and :func:`scaled_sum`: the two ``balance_loss_method`` options.
- :func:`mixup`: seeded mixup of an image batch and the matching mixed cross-entropy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

MI_CALCULATORS = ("kl", "wasserstein")


def kl_per_sample(p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL( softmax(p/T) || softmax(q/T) ) per row, in nats, shape (B,)."""
    log_p = F.log_softmax(p_logits / temperature, dim=1)
    log_q = F.log_softmax(q_logits / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def tempered_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Batch mean of :func:`kl_per_sample` (a scalar, nats)."""
    return kl_per_sample(p_logits, q_logits, temperature).mean()


def ground_cost(n_classes: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """|i - j| between class indices (for two classes: the 0/1 cost)."""
    idx = torch.arange(n_classes, device=device, dtype=dtype)
    return (idx[:, None] - idx[None, :]).abs()


def sinkhorn_distance(p: torch.Tensor, q: torch.Tensor, epsilon: float = 0.05, iterations: int = 100,
                      cost: torch.Tensor | None = None) -> torch.Tensor:
    """Entropic OT cost <P, C> between rows of ``p`` and ``q`` (probabilities, (B, C)), shape (B,).

    Sinkhorn-Knopp in the log domain with regularisation ``epsilon``; as epsilon -> 0 the value
    tends to the Wasserstein-1 distance under ``cost`` (default :func:`ground_cost`).
    """
    b, c = p.shape
    cost = ground_cost(c, p.device, p.dtype) if cost is None else cost
    log_p = torch.log(p.clamp_min(1e-12))
    log_q = torch.log(q.clamp_min(1e-12))
    log_k = -cost / epsilon                                   # (C, C)
    f = torch.zeros_like(p)
    g = torch.zeros_like(q)
    for _ in range(iterations):                               # alternate marginal projections
        f = log_p - torch.logsumexp(log_k[None] + g[:, None, :], dim=2)
        g = log_q - torch.logsumexp(log_k[None] + f[:, :, None], dim=1)
    plan = torch.exp(f[:, :, None] + log_k[None] + g[:, None, :])
    return (plan * cost[None]).sum(dim=(1, 2))


def divergence(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float,
               mi_calculator: str = "kl") -> torch.Tensor:
    """Batch-mean divergence between softmax(teacher/T) (detached) and softmax(student/T)."""
    teacher_logits = teacher_logits.detach()
    if mi_calculator == "kl":
        return tempered_kl(teacher_logits, student_logits, temperature)
    if mi_calculator == "wasserstein":
        p = F.softmax(teacher_logits / temperature, dim=1)
        q = F.softmax(student_logits / temperature, dim=1)
        return sinkhorn_distance(p, q).mean()
    raise ValueError(f"model.lib.mi_calculator must be one of {MI_CALCULATORS}, got {mi_calculator!r}")


def global_information_loss(all_logits: torch.Tensor, g_logits: torch.Tensor, temperature: float = 1.5,
                            mi_calculator: str = "kl") -> torch.Tensor:
    """GIL = D( softmax(z_all.detach()/T) || softmax(z_G/T) ), batch mean."""
    return divergence(all_logits, g_logits, temperature, mi_calculator)


def local_information_loss(all_logits: torch.Tensor, without_logits: torch.Tensor, temperature: float = 1.5,
                           mi_calculator: str = "kl") -> torch.Tensor:
    """LIL = exp( - sum_i D_i ), D_i = batch-mean D( softmax(z_all.detach()/T) || softmax(z_without_i/T) ).

    ``without_logits``: (B, n, C), the leave-one-out heads.
    """
    total = sum(divergence(all_logits, without_logits[:, i], temperature, mi_calculator)
                for i in range(without_logits.shape[1]))
    return torch.exp(-total)


def uncertainty_weighted(losses: Sequence[torch.Tensor], sigma: torch.Tensor) -> torch.Tensor:
    """sum_i 0.5 / s_i^2 * L_i + log(1 + s_i^2)  (learnable uncertainty weights, one s_i per term)."""
    if len(losses) != len(sigma):
        raise ValueError(f"{len(losses)} loss terms but {len(sigma)} uncertainty weights")
    return sum(0.5 / sigma[i] ** 2 * loss + torch.log1p(sigma[i] ** 2) for i, loss in enumerate(losses))


def scaled_sum(losses: Sequence[torch.Tensor], scales: Sequence[float]) -> torch.Tensor:
    """sum_i scales_i * L_i (``balance_loss_method: hyper``)."""
    if len(losses) != len(scales):
        raise ValueError(f"model.lib.scales has {len(scales)} values for {len(losses)} loss terms")
    return sum(float(s) * loss for s, loss in zip(scales, losses))


def mixup(images: torch.Tensor, labels: torch.Tensor, alpha: float, rng: np.random.Generator,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mix a batch with a shuffled copy of itself: x = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha).

    Returns (mixed images, labels a, labels b = labels[perm], lam). ``rng`` draws lam and
    ``generator`` the permutation, so the same seeds give the same mixed batch.
    """
    if alpha <= 0:
        raise ValueError(f"model.lib.alpha must be > 0 for mixup, got {alpha}")
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(images.shape[0], generator=generator).to(images.device)
    return lam * images + (1.0 - lam) * images[perm], labels, labels[perm], lam


def mixed_cross_entropy(logits: torch.Tensor, labels_a: torch.Tensor, labels_b: torch.Tensor, lam: float) -> torch.Tensor:
    """lam * CE(logits, a) + (1 - lam) * CE(logits, b); equals plain CE when lam = 1."""
    if lam == 1.0:
        return F.cross_entropy(logits, labels_a)
    return lam * F.cross_entropy(logits, labels_a) + (1.0 - lam) * F.cross_entropy(logits, labels_b)
