"""How good a fit is: divergences between the node histogram and the target, on its grid.

P = node histogram / K on the target's grid (points outside the square count in the edge
cells). KL(P || Q) = sum over P > 0 of P log(P / Q) in nats (scipy.stats.entropy(P, Q)); JS in
bits; TV = 0.5 sum |P - Q|; Hellinger = sqrt(0.5 sum (sqrt P - sqrt Q)^2). Q is strictly
positive, so every value is finite. The "real samples" baseline scores K i.i.d. draws from Q.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from densities import Density, histogram
from toylab.lazy import torch

METRIC_NAMES = ("kl", "js", "tv", "hellinger")


def _as_numpy(nodes: Any) -> np.ndarray:
    if isinstance(nodes, torch.Tensor):
        nodes = nodes.detach().cpu().numpy()
    nodes = np.asarray(nodes, dtype=np.float64)
    if nodes.ndim != 2 or nodes.shape[1] != 2:
        raise ValueError(f"nodes must have shape (K, 2), got {nodes.shape}")
    return nodes


def divergences(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """KL (nats), JS (bits), TV and Hellinger between two distributions on the same cells."""
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    on = p > 0
    kl = float(np.sum(p[on] * np.log(p[on] / q[on])))
    m = 0.5 * (p + q)
    js_p = np.sum(p[on] * np.log(p[on] / m[on]))
    js_q = np.sum(q * np.log(q / m))  # q > 0 everywhere, so m > 0 too
    js = float(0.5 * (js_p + js_q) / np.log(2.0))
    tv = float(0.5 * np.abs(p - q).sum())
    hellinger = float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))
    return {"kl": kl, "js": js, "tv": tv, "hellinger": hellinger}


def node_histogram(nodes: Any, bins: int) -> np.ndarray:
    """Integer node counts per cell of a bins x bins grid (the project's point-to-cell rule)."""
    return histogram(_as_numpy(nodes), bins)


def evaluate_histogram(counts: np.ndarray, density: Density) -> dict[str, float]:
    """Scores of a node histogram against the density, plus the count of stray nodes."""
    counts = np.asarray(counts)
    total = counts.sum()
    out = divergences(counts / total, density.array)
    out["stray"] = int(counts[~density.support_mask()].sum())
    return out


def evaluate(nodes: Any, density: Density) -> dict[str, float]:
    """Score K nodes against a target: kl, js, tv, hellinger and `stray`, the number of nodes
    in cells outside the target's support (each costs about (1/K) ln(1e20 bins^2 / K) of KL)."""
    return evaluate_histogram(node_histogram(nodes, density.bins), density)


def real_samples(density: Density, k: int, rng: np.random.Generator) -> dict[str, float]:
    """The baseline: K i.i.d. samples from the target, scored like nodes."""
    return evaluate(density.sample(k, rng), density)
