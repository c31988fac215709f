"""Replay Split-and-Prune (`replay`, issue 16): deterministic, resumable, better than sp."""

import numpy as np
import pytest
from method_helpers import assert_beats_sp_beyond_the_seeds_spread, two_target_config

import toylab
from toylab.errors import ToylabError
from toylab.fitting.methods import Settings
from toylab.fitting.replay import ReplaySplitAndPrune
from toylab.fitting.ring import push_points
from toylab.run import Run
from toylab.store import statefile


def test_same_seed_same_nodes_different_seed_different_nodes():
    kw = dict(methods="replay", steps=300, nodes=200, frames=0, bins=32)
    a = toylab.fit("blur_circles", seed=3, **kw)
    b = toylab.fit("blur_circles", seed=3, **kw)
    c = toylab.fit("blur_circles", seed=4, **kw)
    assert np.array_equal(a.nodes["replay"], b.nodes["replay"])
    assert not np.array_equal(a.nodes["replay"], c.nodes["replay"])


def test_adding_replay_does_not_change_sp():
    kw = dict(seed=1, steps=150, nodes=200, frames=0, bins=32)
    alone = toylab.fit("spiral", methods="sp", **kw)
    both = toylab.fit("spiral", methods="sp,replay", **kw)
    assert np.array_equal(alone.nodes["sp"], both.nodes["sp"])


def test_the_buffer_is_a_ring_of_the_latest_points_emptied_at_a_target_change():
    m = ReplaySplitAndPrune(np.zeros((4, 2)), Settings(replay_window=2))  # room for 8 points
    m.refit_start = 1e9  # no refits: only the buffer is under test
    m.next_refit = 10**9
    pts = np.arange(26, dtype=float).reshape(13, 2)
    m.step(pts[:5])
    m.step(pts[5:])
    assert m.filled == 8 and m.seen == 13
    assert sorted(m.buffer[:, 0].tolist()) == sorted(pts[5:, 0].tolist())  # the last 8
    m.begin_target(10, None)
    assert m.filled == 0 and m.seen == 0


def test_push_points_keeps_the_newest_in_order_behind_the_head():
    ring = np.full((5, 1), -1.0)
    head, filled = push_points(ring, 0, 0, np.arange(3.0)[:, None])
    assert (head, filled) == (3, 3) and ring[:3, 0].tolist() == [0, 1, 2]
    head, filled = push_points(ring, head, filled, np.arange(3.0, 7.0)[:, None])  # wraps
    assert (head, filled) == (2, 5) and ring[:, 0].tolist() == [5, 6, 2, 3, 4]
    head, filled = push_points(ring, head, filled, np.arange(7.0, 14.0)[:, None])  # > ring
    assert (head, filled) == (2, 5)
    assert np.roll(ring[:, 0], -head).tolist() == [9, 10, 11, 12, 13]  # oldest first from head


def test_a_refit_moves_nodes_to_the_mean_of_their_buffered_points():
    m = ReplaySplitAndPrune(np.array([[-0.5, 0.0], [0.5, 0.0]]), Settings(replay_window=8))
    m._remember(np.array([[-0.6, 0.1], [-0.4, -0.1], [0.7, 0.2], [0.5, 0.2], [0.6, -0.1]]))
    m.counts[:] = [1.0, 4.0]  # total 5 matches, redistributed by the refit
    m.refit()
    assert np.allclose(m.pos, [[-0.5, 0.0], [0.6, 0.1]])
    assert np.allclose(m.counts, [2.0, 3.0]) and np.allclose(m.n, [2.0, 3.0])
    assert np.allclose(m.cov[0], [0.01, -0.01, 0.01])  # offsets (-0.1, 0.1), (0.1, -0.1)
    assert m.index.query(np.array([[0.6, 0.1]]))[0] == 1  # the index follows


def _config(**extra):
    # replay_window 3: 300 points, so the ring wraps inside each target
    return two_target_config(["sp", "replay"], 100, replay_window=3, **extra)


def test_interrupted_then_resumed_equals_uninterrupted():
    full = Run(_config())
    full.advance()
    assert full.methods["replay"].refits >= 4
    for stop_at in (5, 20, 69, 70, 100, 139):  # before and after refits, in both targets
        part = Run(_config())
        part.advance(should_stop=lambda p=part, s=stop_at: p.global_step >= s)
        resumed = Run(_config())  # through the checkpoint's serialisation
        resumed.load_state_dict(statefile.loads(statefile.dumps(part.state_dict())), part.frames)
        assert resumed.advance()
        a, b = resumed.methods["replay"], full.methods["replay"]
        assert np.array_equal(a.pos, b.pos) and np.array_equal(a.counts, b.counts)
        assert np.array_equal(a.buffer[: a.filled], b.buffer[: b.filled])
        assert (a.seen, a.head, a.next_refit, a.refits) == (b.seen, b.head, b.next_refit, b.refits)
        assert resumed.kl_rows == full.kl_rows


def test_a_bad_window_is_one_line():
    with pytest.raises(ToylabError) as err:
        toylab.fit("spiral", methods="replay", replay_window=0, steps=5, nodes=20, frames=0)
    assert "--replay-window" in str(err.value) and "\n" not in str(err.value)


def test_replay_beats_sp_by_more_than_the_seeds_spread():
    assert_beats_sp_beyond_the_seeds_spread("replay")
