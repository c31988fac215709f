"""numpy or torch, chosen once per method: the few array operations the fitting code needs.

On CPU a method's positions are a numpy array (per-step work on ten points is several times
cheaper in numpy than in torch, and the CPU path never imports torch: 1-2 s of start-up); on a
GPU they are a tensor on it. Code written against a `Backend` runs on both without asking which
one it has.

`StateMixin` gives any object with declared `state_fields` a `state_dict` / `load_state_dict`
pair: numpy arrays are copied, tensors become CPU tensors, random generators their state, nested
objects their own state_dict, plain values themselves.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from toylab.lazy import as_numpy, is_torch, torch  # torch is imported on first use only


class NumpyBackend:
    """Work arrays are numpy arrays (the CPU path)."""

    name = "numpy"
    sqrt = staticmethod(np.sqrt)

    def work(self, positions: np.ndarray) -> np.ndarray:
        return positions

    def points(self, points: Any) -> np.ndarray:
        return np.asarray(as_numpy(points), dtype=np.float64)

    def zeros(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def ones(self, n: int) -> np.ndarray:
        return np.ones(n)

    def zeros_like(self, a: np.ndarray) -> np.ndarray:
        return np.zeros_like(a)

    def int_zeros(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)

    def rows(self, n: int) -> np.ndarray:
        return np.zeros((n, 2))

    def indices(self, idx: np.ndarray) -> np.ndarray:
        return idx

    def add_at(self, target: np.ndarray, idx: np.ndarray, values: Any) -> None:
        """target[idx] += values, repeated indices adding up."""
        np.add.at(target, idx, values)

    def numpy(self, a: np.ndarray) -> np.ndarray:
        return a

    def group_by_node(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """Group matches by node, keeping batch order within a node.

        Returns (order, nodes, group, rank, sizes): points[order] are grouped by node; `nodes`
        the distinct matched nodes; group[p] the position in `nodes` of sorted point p; rank[p]
        its 1-based place among its node's points; sizes[g] the number of points of node g.
        """
        order = np.argsort(idx, kind="stable")
        s = idx[order]
        new = np.empty(s.size, dtype=bool)
        new[:1] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        sizes = np.diff(np.append(starts, s.size))
        group = np.cumsum(new) - 1
        rank = np.arange(s.size) - starts[group] + 1
        return order, s[starts], group, rank, sizes

    def all_distinct(self, idx: np.ndarray) -> bool:
        s = np.sort(idx)
        return bool((s[1:] != s[:-1]).all())

    def power(self, base: float, exponent: np.ndarray) -> np.ndarray:
        return base ** exponent.astype(np.float64)


class TorchBackend:
    """Work arrays are torch tensors on `device` (the GPU path)."""

    name = "torch"

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)

    def work(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def sqrt(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(a)

    def points(self, points: Any) -> torch.Tensor:
        return torch.as_tensor(points, dtype=torch.float64, device=self.device)

    def zeros(self, n: int) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.float64, device=self.device)

    def ones(self, n: int) -> torch.Tensor:
        return torch.ones(n, dtype=torch.float64, device=self.device)

    def zeros_like(self, a: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(a)

    def int_zeros(self, n: int) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.int64, device=self.device)

    def rows(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 2, dtype=torch.float64, device=self.device)

    def indices(self, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(idx)).to(self.device)

    def add_at(self, target: torch.Tensor, idx: torch.Tensor, values: Any) -> None:
        if not is_torch(values):
            values = torch.full(idx.shape, float(values), dtype=target.dtype, device=self.device)
        target.index_add_(0, idx, values.to(target.dtype))

    def numpy(self, a: torch.Tensor) -> np.ndarray:
        return a.detach().cpu().numpy()

    def group_by_node(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        order = torch.argsort(idx, stable=True)
        nodes, sizes = torch.unique_consecutive(idx[order], return_counts=True)
        group = torch.repeat_interleave(torch.arange(nodes.shape[0], device=idx.device), sizes)
        starts = torch.cumsum(sizes, 0) - sizes
        rank = torch.arange(idx.shape[0], device=idx.device) - starts[group] + 1
        return order, nodes, group, rank, sizes

    def all_distinct(self, idx: torch.Tensor) -> bool:
        return torch.unique(idx).numel() == idx.numel()

    def power(self, base: float, exponent: torch.Tensor) -> torch.Tensor:
        return torch.pow(
            torch.tensor(base, dtype=torch.float64, device=self.device),
            exponent.to(torch.float64),
        )


Backend = NumpyBackend | TorchBackend
Positions = Any  # (K, 2) float64 nodes: a numpy array on CPU, a torch tensor on a GPU
NUMPY = NumpyBackend()


def backend_for(positions: Any) -> Backend:
    """numpy for numpy positions (the CPU path), torch on the tensor's device otherwise."""
    return NUMPY if isinstance(positions, np.ndarray) else TorchBackend(positions.device)


def copy_positions(positions: Any) -> Any:
    """A float64 copy of (K, 2) positions, a method's own nodes: numpy for numpy arrays and CPU
    tensors (the CPU path), a tensor on its device for GPU tensors."""
    if is_torch(positions) and positions.device.type != "cpu":
        return positions.detach().clone().to(torch.float64)
    return np.array(as_numpy(positions), dtype=np.float64)


def assign(target: Any, values: np.ndarray) -> None:
    """target[...] = values (a numpy array), for a numpy array or a tensor on any device."""
    if isinstance(target, np.ndarray):
        target[...] = values
    else:
        target.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(target.device))


def group_by_node(idx: Any) -> tuple[Any, ...]:
    """`Backend.group_by_node` for either kind of index array."""
    if is_torch(idx):
        return TorchBackend(idx.device).group_by_node(idx)
    return NUMPY.group_by_node(idx)


class StateMixin:
    """state_dict / load_state_dict from the attribute names in `state_fields`.

    Saved: numpy arrays as copies, tensors as CPU tensors, numpy Generators as their
    bit-generator state, torch Generators as their state, objects with a state_dict as that dict, plain
    values as they are. None attributes are left out. Loading copies into the existing arrays
    (in place, so views stay valid) and ignores keys the object no longer declares.
    """

    state_fields: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.state_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, np.ndarray):
                out[name] = value.copy()
            elif is_torch(value):
                out[name] = value.detach().cpu().clone()
            elif isinstance(value, np.random.Generator):
                out[name] = value.bit_generator.state
            elif is_torch(value, "Generator"):
                out[name] = value.get_state()
            elif hasattr(value, "state_dict"):
                out[name] = value.state_dict()
            else:
                out[name] = value
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.state_fields:
            if name not in state:
                continue
            current, saved = getattr(self, name), state[name]
            if isinstance(current, np.ndarray):
                current[...] = as_numpy(saved)
            elif is_torch(current):
                current.copy_(torch.as_tensor(saved).to(current.device))
            elif isinstance(current, np.random.Generator):
                current.bit_generator.state = saved
            elif is_torch(current, "Generator"):
                current.set_state(torch.as_tensor(saved))
            elif hasattr(current, "load_state_dict"):
                current.load_state_dict(saved)
            elif current is not None:
                setattr(self, name, type(current)(saved))
        self.after_load()

    def after_load(self) -> None:
        """Rebuild what is derived from the loaded state (nothing by default)."""
