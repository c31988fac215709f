"""The hierarchical DDN in 2D: a K-ary tree of L layers (tree of points or neural), its latent
(one child index per layer), and zero-shot guided sampling (greedy and exact).

table.py     the tree expanded into one table (both forms sample and guide through it)
points.py    the tree of points (+ kernels.py, its compiled descent and Split-and-Prune)
neural.py    the neural form (an MLP per layer)
guides.py    conditions and the greedy, exact and rejection samplers, reconstruction
method.py    `--method tree`: the run's method interface

Nothing is imported here, so `toylab sample --help` stays light.
"""
