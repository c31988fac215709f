"""Training behaviour: determinism, independence of methods, quality, resume."""

import numpy as np
import pytest
import torch

import toylab
from toylab.config import RunConfig
from toylab.run import Run
from toylab.store import statefile

TINY = dict(steps=200, batch=10, frames=3, bins=32)


def test_same_seed_same_nodes_and_kl():
    a = toylab.fit("gaussian", nodes=300, seed=5, **TINY)
    b = toylab.fit("gaussian", nodes=300, seed=5, **TINY)
    c = toylab.fit("gaussian", nodes=300, seed=6, **TINY)
    for m in ("gd", "sp"):
        assert np.array_equal(a.nodes[m], b.nodes[m])
        assert (
            a.metrics["targets"][0]["methods"][m]["kl"]
            == b.metrics["targets"][0]["methods"][m]["kl"]
        )
        assert not np.array_equal(a.nodes[m], c.nodes[m])


def test_adding_a_method_does_not_change_another():
    alone = toylab.fit("blur_circles", nodes=300, methods="sp", seed=1, **TINY)
    both = toylab.fit("blur_circles", nodes=300, methods="gd,sp", seed=1, **TINY)
    assert np.array_equal(alone.nodes["sp"], both.nodes["sp"])
    gd = toylab.fit("blur_circles", nodes=300, methods="gd", seed=1, **TINY)
    assert np.array_equal(gd.nodes["gd"], both.nodes["gd"])


def test_methods_start_from_the_same_nodes():
    r = toylab.fit("gaussian", nodes=100, steps=1, batch=1, frames=0)
    moved = (r.nodes["gd"] != r.nodes["sp"]).any(axis=1)
    assert moved.sum() <= 3  # one matched node moved, one split copy, at most


def test_split_and_prune_beats_gradient_descent_by_a_wide_margin():
    r = toylab.fit("blur_circles", nodes=500, steps=3000, batch=10, frames=0, seed=0)
    t = r.metrics["targets"][0]
    gd, sp, real = t["methods"]["gd"]["kl"], t["methods"]["sp"]["kl"], t["real_samples"]["kl"]
    assert sp < gd / 5
    assert sp < 1.5 * real
    assert t["methods"]["sp"]["stray"] < t["methods"]["gd"]["stray"] / 10


def test_sequence_carries_nodes_and_resets_counts():
    r = toylab.fit("gaussian,uniform", nodes=200, steps=50, batch=10, frames=2, bins=16)
    assert [t["target"] for t in r.metrics["targets"]] == ["gaussian", "uniform"]
    assert r.frames.target_index == [0, 0, 1, 1]
    assert r.frames.global_step == [0, 50, 50, 100]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("max_splits", [1, 6])
def test_interrupted_then_resumed_equals_uninterrupted(optimizer, max_splits):
    cfg = dict(
        targets=["gaussian", "blur_circles"],
        nodes=400,
        steps=120,
        batch=7,
        frames=5,
        bins=32,
        optimizer=optimizer,
        max_splits=max_splits,
        eval_every=17,
        methods=["gd", "sp", "soft", "kmeans"],
    )
    full = Run(RunConfig(**cfg))
    full.advance()
    for stop_at in (0, 1, 119, 120, 150):
        part = Run(RunConfig(**cfg))
        part.advance(should_stop=lambda p=part, s=stop_at: p.global_step >= s)
        state = part.state_dict()
        # through serialisation, as the checkpoint file does
        resumed = Run(RunConfig(**cfg))
        resumed.load_state_dict(statefile.loads(statefile.dumps(state)), part.frames)
        assert resumed.advance()
        for m in ("gd", "sp", "soft", "kmeans"):
            assert np.array_equal(resumed.positions()[m], full.positions()[m])
        assert _same_but_seconds(resumed.metrics(), full.metrics())
        assert resumed.kl_rows == full.kl_rows
        assert resumed.frames.global_step == full.frames.global_step
        assert all(
            np.array_equal(a, b) for a, b in zip(resumed.frames.hist, full.frames.hist, strict=True)
        )


def _same_but_seconds(a, b):
    def strip(m):
        return [
            {**t, "methods": {k: {**v, "seconds": 0} for k, v in t["methods"].items()}}
            for t in m["targets"]
        ]

    return strip(a) == strip(b)


def test_fit_rejects_unknown_keywords():
    with pytest.raises(TypeError):
        toylab.fit("gaussian", nodes=10, steps=1, frobnicate=3)


def test_a_longer_run_continues_a_shorter_one():
    """Batches do not depend on --steps: the first 300 steps of a 900-step run are a 300-step run."""
    short = Run(
        RunConfig(targets=["spiral"], nodes=300, steps=300, batch=500, frames=0, methods=["sp"])
    )
    short.advance()
    long = Run(
        RunConfig(targets=["spiral"], nodes=300, steps=900, batch=500, frames=0, methods=["sp"])
    )
    long.advance(should_stop=lambda: long.step >= 300)
    assert np.array_equal(short.positions()["sp"], long.positions()["sp"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_gpu_code_path_runs_on_cpu_tensors(monkeypatch, optimizer):
    """--device cuda runs the methods on torch tensors; with no GPU here, force that path on CPU
    tensors and check it fits like the numpy path (the same rules, other rounding/randomness)."""
    import toylab.fitting.methods as methods

    kw = dict(nodes=300, steps=1500, batch=10, frames=0, seed=2, optimizer=optimizer)
    numpy_path = toylab.fit("blur_circles", methods="gd,sp,soft,kmeans", **kw)
    from toylab.fitting.backend import TorchBackend

    monkeypatch.setattr(methods, "backend_for", lambda tensor: TorchBackend(tensor.device))
    monkeypatch.setattr(
        methods, "copy_positions", lambda p: torch.tensor(np.asarray(p), dtype=torch.float64)
    )
    torch_path = toylab.fit("blur_circles", methods="gd,sp,soft,kmeans", **kw)
    for m in ("gd", "sp", "soft", "kmeans"):
        a = numpy_path.metrics["targets"][0]["methods"][m]
        b = torch_path.metrics["targets"][0]["methods"][m]
        assert np.isfinite(b["kl"]) and b["kl"] < 1.5 * a["kl"] + 0.5, (m, a["kl"], b["kl"])
    run = torch_path.run
    assert isinstance(run.methods["sp"].pos, torch.Tensor)
    # gd and sp share no randomness: the tensor path gives the same nodes up to rounding
    if optimizer == "sgd":
        np.testing.assert_allclose(torch_path.nodes["gd"], numpy_path.nodes["gd"], atol=1e-9)
