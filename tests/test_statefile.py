"""The checkpoint's payload (toylab.store.statefile) and the W2 helper process (toylab.transport).

The state file must give back every value with its type (a resume is bit-exact only if it
does) and refuse what it cannot read in one line; the helper must give exactly the numbers
of an in-process call and survive its own death.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import densities
from toylab import transport
from toylab.metrics import wasserstein
from toylab.store import statefile


def test_every_kind_of_value_comes_back_with_its_type():
    rng = np.random.default_rng(5)
    state = {
        "ints": [0, -1, 2**100, True, None],
        "floats": [0.1, -0.0, math.inf, -math.inf, 1e-310, 1 / 3],
        "tuple": (1, (2.5, "x")),
        "int_keys": {0: "a", 7: {"b": 1}},
        "dunder": {"__array__": 1, "__tuple__": [2]},
        "scalars": [np.float32(0.1), np.int64(-3), np.bool_(True), np.float64(2.0)],
        "arrays": [np.arange(5, dtype=np.int64), rng.normal(size=(3, 2)), np.zeros((0, 2))],
        "rng": rng.bit_generator.state,
        "tensor": torch.arange(4, dtype=torch.float32),
        "nan": math.nan,
    }
    back = statefile.loads(statefile.dumps(state))
    assert back["ints"] == state["ints"] and type(back["ints"][3]) is bool
    assert back["floats"][:-1] == state["floats"][:-1] and back["floats"][-1] == 1 / 3
    assert math.copysign(1, back["floats"][1]) == -1
    assert back["tuple"] == (1, (2.5, "x"))
    assert back["int_keys"] == {0: "a", 7: {"b": 1}}
    assert back["dunder"] == {"__array__": 1, "__tuple__": [2]}
    for a, b in zip(back["scalars"], state["scalars"], strict=True):
        assert type(a) is type(b) and a == b
    for a, b in zip(back["arrays"], state["arrays"], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    g = np.random.default_rng()
    g.bit_generator.state = back["rng"]
    assert g.random() == rng.random()
    assert isinstance(back["tensor"], torch.Tensor) and torch.equal(back["tensor"], state["tensor"])
    assert math.isnan(back["nan"])


def test_what_cannot_be_saved_or_read_is_refused():
    with pytest.raises(TypeError, match="object arrays"):
        statefile.dumps({"a": np.array([{}, 1], dtype=object)})
    with pytest.raises(TypeError, match="set"):
        statefile.dumps({"a": {1, 2}})
    for junk in (b"", b"PK\x03\x04 not a zip", np.random.default_rng(0).bytes(3000)):
        with pytest.raises(statefile.StateFileError):
            statefile.loads(junk)


@pytest.fixture
def helper(monkeypatch):
    monkeypatch.setenv(transport.ENV_SWITCH, "1")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    transport.stop()
    assert transport.start()
    yield transport._helper
    transport.stop()


def test_the_helper_gives_the_numbers_of_an_in_process_call(helper):
    density = densities.get("spiral", 40)
    rng = np.random.default_rng(0)
    small, big = density.sample(50, rng), density.sample(3000, rng)  # exact, then sliced
    jobs = [transport.submit(x, density) for x in (small, big, small)]
    assert jobs[2].result() == wasserstein(small, density)  # read out of order
    assert jobs[0].result() == (wasserstein(small, density)[0], "exact")
    assert jobs[1].result() == (wasserstein(big, density)[0], "sliced")


def test_a_dead_helper_is_replaced_by_the_run_own_process(helper):
    density = densities.get("checkerboard", 30)
    nodes = density.sample(80, np.random.default_rng(1))
    helper.process.kill()
    helper.process.join()
    assert transport.submit(nodes, density).result() == wasserstein(nodes, density)
    assert transport._helper is None  # later jobs run here without trying the dead one again


def test_no_helper_when_switched_off(monkeypatch):
    transport.stop()
    monkeypatch.setenv(transport.ENV_SWITCH, "0")
    assert not transport.start()
    density = densities.get("spiral", 30)
    nodes = density.sample(40, np.random.default_rng(2))
    assert transport.submit(nodes, density).result() == wasserstein(nodes, density)


def _chain_metrics() -> tuple[str, list]:
    from toylab.config import RunConfig
    from toylab.run import Run

    cfg = RunConfig(
        targets=["spiral", "checkerboard"], nodes=300, steps=200, batch=10, frames=4, bins=40
    )
    run = Run(cfg.validate())
    run.advance()
    for target in run.results:  # wall seconds are the one thing allowed to differ
        for scores in target["methods"].values():
            scores.pop("seconds")
    return json.dumps(run.metrics()), run.kl_rows


def test_a_run_settles_the_helper_results_exactly_as_computed_in_process(helper, monkeypatch):
    with_helper = _chain_metrics()
    assert transport._helper is helper  # the helper answered every job
    transport.stop()
    monkeypatch.setenv(transport.ENV_SWITCH, "0")
    in_process = _chain_metrics()
    assert with_helper == in_process  # the nodes were copied at the target's end, not read late
    targets = json.loads(in_process[0])["targets"]
    assert all("data_floor" in t["floors"] and t["wasserstein_estimate"] for t in targets)
    assert [r["wasserstein"] for r in in_process[1] if "wasserstein" in r]  # last rows got W2
