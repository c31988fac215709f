"""`--method tree`: the hierarchical DDN as a method of a run, side by side with the flat ones.

It trains on the run's batches like every method. What the run histograms (`positions`, the
run's K = --nodes points) are K samples drawn from the model, redrawn whenever the model has
changed, from a stream keyed by the step count (so a resume redraws the very same points).
`extra_metrics` scores the model on `tree_eval_samples` (default 10^6) samples as well: the
model's own distribution error, which K samples can only estimate.

The prior over children: `learned` (default) samples child k of a parent in proportion to its
decayed use by the data (how often it was the chosen child, half-life 10% of the target's
steps): the maximum-likelihood prior of the tree; `uniform` is the paper's 1/K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import densities
from toylab.fitting.backend import Positions
from toylab.fitting.tree.points import PointTree, cosine_step
from toylab.fitting.tree.table import TreeTable
from toylab.lazy import as_numpy, torch
from toylab.metrics import evaluate
from toylab.params import TREE_FORM_DEFAULTS, TREE_FORMS, TREE_PRIORS

FORMS, PRIORS = TREE_FORMS, TREE_PRIORS
PRIOR_HALF_LIFE = 0.1  # the learned prior forgets with a half-life of 10% of a target's steps
# The neural DDN's leaves keep moving until late (Adam on shared weights), so its prior
# forgets faster: 3% of the steps (0.43 -> 0.30 KL on spiral at 1,500 steps, batch 32,768).
NEURAL_PRIOR_HALF_LIFE = 0.03


def prior_decay(target_steps: int, half_life: float = PRIOR_HALF_LIFE) -> float:
    """Per-step decay of the node use behind the learned prior (half-life >= 100 steps)."""
    return 0.5 ** (1.0 / max(100.0, half_life * target_steps))


# Form defaults for --k and --layers: the configurations the prototype found best.
FORM_DEFAULTS = TREE_FORM_DEFAULTS


@dataclass
class TreeStep:
    """What one step did: (B, L) node ids chosen per layer, and splits done this step."""

    matched: np.ndarray
    splits: int


def form_shape(settings) -> tuple[int, int]:
    """(K, L) of the settings, the form's defaults filling what is unset."""
    d = FORM_DEFAULTS[settings.tree_form]
    k = settings.k if settings.k is not None else d["k"]
    layers = settings.layers if settings.layers is not None else d["layers"]
    return int(k), int(layers)


class TreeMethod:
    """The hierarchical DDN (tree of points or neural) behind the run's method interface."""

    name = "tree"
    title = "hierarchical DDN"

    def __init__(self, positions: Positions, settings, rng: np.random.Generator | None = None):
        self.settings = settings
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.n_out = int(positions.shape[0])
        self.device = None if isinstance(positions, np.ndarray) else positions.device
        self.k, self.layers = form_shape(settings)
        if settings.tree_form == "points":
            self.model = PointTree(
                self.k,
                self.layers,
                settings.tree_ratio,
                self.rng,
                "l2",
                settings.split_ratio,
                settings.prune_ratio,
                max(1, settings.max_splits),
            )
        else:
            from toylab.fitting.tree.neural import NeuralTree

            self.model = NeuralTree(
                self.k,
                self.layers,
                self.rng,
                lr=settings.tree_lr,
                device=self.device or "cpu",
                split_ratio=settings.split_ratio,
                prune_ratio=settings.prune_ratio,
            )
        self.model.prior = settings.tree_prior
        self.sample_seed = int(self.rng.integers(2**62))
        self.target_step = 0
        self.target_steps = 1
        self.steps_done = 0
        self._positions: Positions | None = None
        self._positions_at = -1

    # -- what the run reads ---------------------------------------------------------------
    def table(self) -> TreeTable:
        """The model expanded into a table of all its nodes."""
        return self.model.table()

    @property
    def positions(self) -> Positions:
        """K = --nodes samples from the model as it is now (redrawn after every change)."""
        if self._positions_at != self.steps_done:
            rng = np.random.default_rng([self.sample_seed, self.steps_done])
            pts = self.table().sample(self.n_out, rng)
            self._positions = pts if self.device is None else torch.from_numpy(pts).to(self.device)
            self._positions_at = self.steps_done
        return self._positions

    def extra_metrics(self, density: densities.Density) -> dict:
        """The model scored on tree_eval_samples samples (kl_model, tv_model), its size."""
        rng = np.random.default_rng([self.sample_seed, self.steps_done, 1])
        n = int(self.settings.tree_eval_samples)
        scores = evaluate(self.table().sample(n, rng), density)
        return {
            "kl_model": scores["kl"],
            "tv_model": scores["tv"],
            "leaves": self.k**self.layers,
            "parameters": int(self.model.parameters),
        }

    # -- training -------------------------------------------------------------------------
    def begin_target(self, steps: int, density: densities.Density) -> None:
        """A new target: counts and the step schedule restart (the model is carried over)."""
        self.target_step, self.target_steps = 0, steps
        self.model.reset_counts()

    def step(self, points, detail: bool = False) -> TreeStep:
        points = np.asarray(as_numpy(points), dtype=np.float64)
        s = self.settings
        before = sum(self.model.splits)
        if s.tree_form == "points":
            size = cosine_step(s.tree_step, s.tree_step_end, self.target_step, self.target_steps)
            matched = self.model.step(points, size, prior_decay(self.target_steps))
        else:
            decay = prior_decay(self.target_steps, NEURAL_PRIOR_HALF_LIFE)
            matched = self.model.step(points, self.target_step, self.target_steps, decay)
        self.target_step += 1
        self.steps_done += 1
        return TreeStep(matched, sum(self.model.splits) - before)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "target_step": self.target_step,
            "target_steps": self.target_steps,
            "steps_done": self.steps_done,
            "sample_seed": self.sample_seed,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.target_step = int(state["target_step"])
        self.target_steps = int(state["target_steps"])
        self.steps_done = int(state["steps_done"])
        self.sample_seed = int(state["sample_seed"])
        self.rng.bit_generator.state = state["rng"]
        self._positions_at = -1


def model_from_state(state: dict, settings) -> TreeMethod:
    """A TreeMethod rebuilt from a checkpoint's state (for `toylab sample` and `toylab tree`)."""
    method = TreeMethod(np.zeros((2, 2)), settings)
    method.load_state_dict(state)
    return method
