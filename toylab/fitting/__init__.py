"""How nodes move: the fitting methods, their optimizers, Split-and-Prune, nearest-node search.

Nothing here reads or writes files or draws: `store/` and `viz/` build on it, never the reverse.
Methods are listed (name, title, class) in `toylab.catalog`.
"""
