"""Update rules and Split-and-Prune: the numbers the conventions fix."""

import numpy as np
import pytest
import torch

from toylab.fitting.backend import TorchBackend
from toylab.fitting.methods import Settings, SplitAndPrune
from toylab.fitting.optim import SGD, Adam
from toylab.fitting.splitting import _plan_direct, _plan_heap, plan_splits


def test_sgd_equals_the_reference_sequential_loop():
    rng = np.random.default_rng(0)
    pos = rng.uniform(-1, 1, (6, 2))
    ref = pos.copy()
    pts = rng.uniform(-1, 1, (40, 2))
    idx = rng.integers(0, 6, 40)  # many points per node: order matters
    SGD(pos, 0.2).step(pts, idx)
    for i, x in zip(idx, pts, strict=True):
        ref[i] += 2 * 0.2 * (x - ref[i])
    np.testing.assert_allclose(pos, ref, rtol=0, atol=1e-12)


def test_sgd_numpy_and_torch_paths_agree():
    rng = np.random.default_rng(1)
    pos = rng.uniform(-1, 1, (8, 2))
    pts = rng.uniform(-1, 1, (30, 2))
    idx = rng.integers(0, 8, 30)
    a, b = pos.copy(), torch.from_numpy(pos.copy())
    SGD(a, 0.2).step(pts, idx)
    SGD(b, 0.2, TorchBackend("cpu")).step(torch.from_numpy(pts), torch.from_numpy(idx))
    np.testing.assert_allclose(
        a, b.numpy(), atol=1e-12
    )  # compiled loop vs vectorized formula: rounding only


def test_adam_moves_only_matched_nodes_and_matches_torch_adam():
    rng = np.random.default_rng(2)
    pos = rng.uniform(-1, 1, (5, 2))
    opt = Adam(pos, lr=0.01)
    start = pos.copy()
    pts = rng.uniform(-1, 1, (3, 2))
    idx = np.array([1, 1, 3])
    opt.step(pts, idx)
    assert np.array_equal(pos[[0, 2, 4]], start[[0, 2, 4]])
    # one step of torch's Adam on node 1's summed loss gives the same position
    p = torch.tensor(start[1], requires_grad=True)
    torch_opt = torch.optim.Adam([p], lr=0.01)
    loss = ((p - torch.tensor(pts[0])) ** 2).sum() + ((p - torch.tensor(pts[1])) ** 2).sum()
    loss.backward()
    torch_opt.step()
    np.testing.assert_allclose(pos[1], p.detach().numpy(), atol=1e-12)
    assert opt.steps.tolist() == [0, 1, 0, 1, 0]


def naive_rule(counts, max_splits, split_ratio=2.0, prune_ratio=0.5):
    """The conventions' pseudocode, line by line."""
    counts = list(counts)
    k = len(counts)
    pairs = []
    for _ in range(max_splits):
        total = sum(counts)
        i = max(range(k), key=lambda n: (counts[n], -n))
        j = min(range(k), key=lambda n: (counts[n], n))
        if counts[i] > split_ratio / k * total or counts[j] < prune_ratio / k * total:
            pairs.append((i, j))
            counts[i] = counts[j] = counts[i] / 2
        else:
            break
    return pairs, counts


@pytest.mark.parametrize("seed", range(40))
def test_split_planner_follows_the_pseudocode(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 40))
    counts = rng.integers(0, 8, k).astype(float) if seed % 2 else rng.exponential(3, k).round(1)
    m = int(rng.integers(1, 60))
    want_pairs, want_counts = naive_rule(counts, m)
    for plan in (_plan_direct, _plan_heap, plan_splits):
        c = counts.copy()
        assert plan(c, m, 2.0, 0.5) == want_pairs
        np.testing.assert_array_equal(c, want_counts)
    t = torch.tensor(counts)
    assert plan_splits(t, m) == want_pairs


def test_split_copies_position_counts_and_optimizer_state():
    k = 6
    init = torch.tensor(np.random.default_rng(3).uniform(-1, 1, (k, 2)))
    sp = SplitAndPrune(init, Settings(optimizer="adam", lr=0.01))
    sp.optimizer.exp_avg[4] = [0.3, -0.2]
    sp.optimizer.exp_avg_sq[4] = [0.05, 0.07]
    sp.optimizer.steps[4] = 9
    before = sp.pos[4].copy()
    # four points at node 4's position: node 4 wins them all; every other count is 0
    step = sp.step(np.repeat(before[None], 4, axis=0))
    assert step.splits == [(4, 0)]  # most matched node 4 split into the lowest-index empty slot
    assert sp.counts[4] == sp.counts[0] == 2.0
    assert sp.counts.sum() == 4.0
    np.testing.assert_array_equal(sp.pos[0], before)  # the copy took the pre-update position
    assert sp.optimizer.steps[0] == 9
    np.testing.assert_array_equal(sp.optimizer.exp_avg_sq[0], [0.05, 0.07])


def test_counts_reset_when_the_target_changes():
    sp = SplitAndPrune(torch.zeros(4, 2) + torch.arange(4.0)[:, None], Settings())
    sp.step(np.zeros((3, 2)))
    assert sp.counts.sum() > 0
    sp.begin_target(10, None)
    assert sp.counts.sum() == 0


def naive_split_and_prune(pos, points_batches, max_splits, lr=0.2):
    """Split-and-Prune from the conventions, one point and one split at a time."""
    pos = pos.copy()
    k = len(pos)
    counts = [0.0] * k
    for points in points_batches:
        matched = [int(np.argmin(np.abs(pos - x).sum(axis=1))) for x in points]
        for m in matched:
            counts[m] += 1
        pairs, counts = naive_rule(counts, max_splits)
        for i, j in pairs:
            pos[j] = pos[i]
        for m, x in zip(matched, points, strict=True):
            pos[m] += 2 * lr * (x - pos[m])
    return pos, counts


@pytest.mark.parametrize("max_splits", [1, 3, 50])
def test_split_and_prune_step_equals_the_naive_rule(max_splits):
    rng = np.random.default_rng(7)
    k = 40
    init = rng.uniform(-1, 1, (k, 2))
    batches = [rng.normal(0, 0.3, (int(rng.integers(1, 12)), 2)) for _ in range(60)]
    sp = SplitAndPrune(torch.from_numpy(init), Settings(max_splits=max_splits))
    for b in batches:
        sp.step(b)
    want_pos, want_counts = naive_split_and_prune(init, batches, max_splits)
    np.testing.assert_allclose(sp.pos, want_pos, atol=1e-12)
    np.testing.assert_array_equal(sp.counts, want_counts)
