"""A run's state as bytes without pickle or torch: JSON for the structure, .npy for the arrays.

Checkpoints hold nested dicts, lists and tuples of numbers, strings, numpy arrays and random
generator states (and, for the neural tree, torch tensors). Writing them with torch.save
cost every CPU run torch's 1-2 s import although no tensor exists there; pickle would make
loading a foreign file run its code. Here the state becomes one .npz archive (numpy's zip of
.npy files, read with allow_pickle=False): entry `state.json` holds the structure, arrays are
the entries `a0`, `a1`, ... referred to from it. Every value comes back with its type: tuples
as tuples, dicts with non-string keys as such, numpy scalars with their dtype, tensors as CPU
tensors (torch is imported only when the state holds one).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from toylab.lazy import is_torch

STRUCTURE = "state"  # the .npz entry (state.npy) holding the JSON structure as bytes


class StateFileError(ValueError):
    """The bytes are not a state file this module wrote (damaged or foreign)."""


def dumps(state: Any) -> bytes:
    """The state as .npz bytes (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {}

    def array_ref(tag: str, a: np.ndarray) -> dict[str, Any]:
        if a.dtype.hasobject:
            raise TypeError("object arrays cannot be saved without pickle")
        name = f"a{len(arrays)}"
        arrays[name] = a
        return {tag: name}

    def enc(v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, np.generic):
            return {"__np__": v.dtype.str, "v": v.item()}
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, np.ndarray):
            return array_ref("__array__", v)
        if is_torch(v):
            return array_ref("__tensor__", v.detach().cpu().numpy())
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x) for x in v]}
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in v):
                return {k: enc(x) for k, x in v.items()}
            return {"__items__": [[enc(k), enc(x)] for k, x in v.items()]}
        raise TypeError(f"cannot save a {type(v).__name__} in a state file")

    structure = json.dumps(enc(state), separators=(",", ":")).encode()
    arrays[STRUCTURE] = np.frombuffer(structure, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """The state saved by `dumps`; StateFileError if the bytes are not such a file."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        structure = json.loads(arrays.pop(STRUCTURE).tobytes())
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise StateFileError(str(err).splitlines()[0] if str(err) else type(err).__name__) from None

    def dec(v: Any) -> Any:
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "__array__" in v:
            return arrays[v["__array__"]]
        if "__tensor__" in v:
            import torch

            return torch.from_numpy(arrays[v["__tensor__"]])
        if "__np__" in v:
            return np.dtype(v["__np__"]).type(v["v"])
        if "__tuple__" in v:
            return tuple(dec(x) for x in v["__tuple__"])
        if "__items__" in v:
            return {_hashable(dec(k)): dec(x) for k, x in v["__items__"]}
        return {k: dec(x) for k, x in v.items()}

    try:
        return dec(structure)
    except (KeyError, TypeError, ValueError) as err:
        raise StateFileError(f"unexpected structure ({err})") from None


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
