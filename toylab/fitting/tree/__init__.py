"""The hierarchical DDN in 2D: a K-ary tree of L layers (tree of points or neural), its latent
(one child index per layer), and zero-shot guided sampling (greedy and exact)."""

from toylab.fitting.tree.guides import (
    BoxGuide,
    Guide,
    MaskGuide,
    PointGuide,
    XGuide,
    guided_sample,
    parse_guide,
    reconstruct,
    sample_exact,
    sample_greedy,
    sample_rejection,
)
from toylab.fitting.tree.points import PointTree
from toylab.fitting.tree.table import TreeTable

__all__ = [
    "BoxGuide",
    "Guide",
    "MaskGuide",
    "PointGuide",
    "PointTree",
    "TreeTable",
    "XGuide",
    "guided_sample",
    "parse_guide",
    "reconstruct",
    "sample_exact",
    "sample_greedy",
    "sample_rejection",
]
