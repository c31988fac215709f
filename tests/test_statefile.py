"""The checkpoint's payload (toylab.store.statefile): every value comes back with its type (a
resume is bit-exact only if it does), and what cannot be read is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

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


def test_the_frame_store_gives_back_what_it_was_given_the_last_one_without_decompressing():
    """HistStore keeps every frame compressed and the last one also as it is: indexing gives
    the same counts either way, the caller's later changes never reach the store, the kept one
    is read-only, and truncating forgets it."""
    from toylab.store.frames import HistStore

    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 9, (2, 5, 5)).astype(np.uint16) for _ in range(3)]
    store = HistStore()
    for f in frames:
        store.append(f)
    frames[2][0, 0, 0] = 99  # the caller reuses its array
    assert store._last is not None and store[2] is store._last and store[-1] is store._last
    assert not store[2].flags.writeable and store[2][0, 0, 0] != 99
    store._last = None  # from here on, from the compressed copies only
    assert all(np.array_equal(store[i], f) for i, f in enumerate(frames[:2]))
    assert store[2][0, 0, 0] != 99
    store.append(frames[0])
    del store[1:]
    assert len(store) == 1 and np.array_equal(store[0], frames[0]) and store._last is None
