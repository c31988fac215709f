"""The expanded tree: every node of a hierarchical DDN as a table, the form all samplers use.

A hierarchical DDN with L layers of K candidates is a K-ary tree: layer l (0-based) holds
K^(l+1) nodes, node n's parent is n // K at layer l - 1 and its children are n*K .. n*K + K - 1
at layer l + 1. A sample is a path root -> leaf (one child index per layer: the latent code,
L log2 K bits) and the point it produces is the leaf's position. Both forms of the model (the
tree of points and the neural DDN) expand into this table, so sampling, guided sampling,
reconstruction and the pictures are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TreeTable:
    """Positions (and the prior over children) of every node of a K-ary tree of depth L.

    positions[l]: (K^(l+1), 2) float64 points of layer l.
    probs[l]: (K^(l+1),) probability of each node given its parent (rows of K sum to 1), or
    None for the uniform prior 1/K.
    """

    k: int
    positions: list[np.ndarray]
    probs: list[np.ndarray] | None = None

    @property
    def layers(self) -> int:
        return len(self.positions)

    @property
    def leaves(self) -> np.ndarray:
        return self.positions[-1]

    @property
    def n_leaves(self) -> int:
        return self.k**self.layers

    def child_probs(self, layer: int) -> np.ndarray:
        """(K^(layer+1),) probability of each node of `layer` given its parent."""
        if self.probs is None:
            return np.full(self.k ** (layer + 1), 1.0 / self.k)
        return self.probs[layer]

    def node_mass(self, layer: int) -> np.ndarray:
        """(K^(layer+1),) probability that a sample's path goes through each node of `layer`."""
        if self.probs is None:
            return np.full(self.k ** (layer + 1), float(self.k) ** -(layer + 1))
        mass = np.ones(1)
        for level in range(layer + 1):
            mass = (mass[:, None] * self.probs[level].reshape(-1, self.k)).ravel()
        return mass

    def leaf_mass(self) -> np.ndarray:
        """(K^L,) probability of every leaf under the model."""
        return self.node_mass(self.layers - 1)

    def paths(self, leaf: np.ndarray) -> np.ndarray:
        """(n, L) child index per layer (the latent code) of leaf ids."""
        leaf = np.asarray(leaf, dtype=np.int64)
        powers = self.k ** np.arange(self.layers - 1, -1, -1, dtype=np.int64)
        return (leaf[:, None] // powers) % self.k

    def node_ids(self, leaf: np.ndarray) -> np.ndarray:
        """(n, L) node id at every layer of the paths to `leaf`."""
        leaf = np.asarray(leaf, dtype=np.int64)
        powers = self.k ** np.arange(self.layers - 1, -1, -1, dtype=np.int64)
        return leaf[:, None] // powers

    def sample_leaves(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n leaf ids drawn from the model (uniform paths, or the prior's path probabilities)."""
        if self.probs is None:
            return rng.integers(0, self.n_leaves, size=n)
        return draw_from_weights(self.leaf_mass(), n, rng)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points drawn from the model: (n, 2)."""
        return self.leaves[self.sample_leaves(n, rng)]


def draw_from_weights(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices drawn with probability proportional to nonnegative `weights` (inverse CDF)."""
    cdf = np.cumsum(weights)
    u = rng.random(n) * cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1)
