"""How nodes move: the fitting methods, their optimizers, Split-and-Prune, nearest-node search.

Nothing here reads or writes files or draws: `store/` and `viz/` build on it, never the reverse.
"""

# Methods defined outside methods.py register here (methods.py cannot import them: a cycle).
from toylab.fitting.balanced import BalancedSplitAndPrune  # noqa: E402
from toylab.fitting.methods import METHODS  # noqa: E402

METHODS.setdefault(BalancedSplitAndPrune.name, BalancedSplitAndPrune)
