"""The neural hierarchical DDN: a network per layer proposes the K candidates, as in the paper.

Layer l is an MLP (2 x `width` SiLU) reading Fourier features of the point chosen above and a
feature vector carried down from the layer above; it outputs K offsets, K prior logits and the
next feature. Candidate k = previous point + s_l tanh(offset_k), s_l a learned per-layer scale.
Training, per batch: at every layer the candidate nearest each point is chosen (no gradient
through the choice), the loss is its squared error / s_l^2 (s_l detached) plus a small pull of
all K candidates toward the point (keeps unchosen heads near the data), plus the prior's
cross-entropy on the chosen index; Adam with a cosine-decayed learning rate. Split-and-Prune on
each layer's head counts copies head i's output rows (offsets and logit) and their Adam state
into the least used head j, with a tiny jitter so the two can separate. Sampling follows the
learned prior p(k | parent) (better than uniform: heads are balanced on average, not per
parent). The whole tree is enumerated (K^L paths) into a TreeTable for sampling and guides.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from toylab.fitting.splitting import plan_splits
from toylab.fitting.tree.table import TreeTable

DETACH = True  # each layer's loss trains that layer only (the chain is not backpropagated)
PULL = 0.01  # weight of the pull of every candidate toward the data point
JITTER = 1e-3  # noise added to a copied head's bias so the copies can part
FREQS = 6  # Fourier octaves of the previous point


class _Layer(nn.Module):
    def __init__(self, k: int, width: int, feat: int):
        super().__init__()
        self.k, self.feat = k, feat
        self.body = nn.Sequential(
            nn.Linear(4 * FREQS + 2 + feat, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
        )
        self.head = nn.Linear(width, 3 * k + feat)

    def forward(self, prev: torch.Tensor, feat: torch.Tensor):
        freqs = (2.0 ** torch.arange(FREQS, dtype=prev.dtype, device=prev.device)) * math.pi
        angles = (prev[:, :, None] * freqs).flatten(1)
        h = self.head(self.body(torch.cat([prev, angles.sin(), angles.cos(), feat], dim=1)))
        k = self.k
        return h[:, : 2 * k].view(-1, k, 2), h[:, 2 * k : 3 * k], torch.tanh(h[:, 3 * k :])


class NeuralTree:
    """L layers of MLPs proposing K candidates each; see the module docstring."""

    def __init__(
        self,
        k: int,
        layers: int,
        rng: np.random.Generator,
        lr: float = 2e-3,
        device: torch.device | str = "cpu",
        split_ratio: float = 2.0,
        prune_ratio: float = 0.5,
        width: int = 128,
        feat: int = 32,
        ratio: float = 0.2,
    ):
        torch.set_flush_denormal(True)  # denormals made CPU steps up to 5x slower
        self.k, self.n_layers, self.lr = k, layers, lr
        self.device = torch.device(device)
        self.split_ratio, self.prune_ratio = split_ratio, prune_ratio
        self.gen = torch.Generator()
        self.gen.manual_seed(int(rng.integers(2**62)))
        self.nets = nn.ModuleList([_Layer(k, width, feat) for _ in range(layers)])
        with torch.no_grad():
            for p in self.nets.parameters():  # re-initialise from the method's own stream
                bound = 1.0 / math.sqrt(p.shape[-1]) if p.dim() > 1 else 0.05
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=self.gen))
        self.nets.to(self.device)
        self.log_scale = nn.Parameter(
            torch.tensor([math.log(ratio**lv) for lv in range(layers)], device=self.device)
        )
        self.params = [*self.nets.parameters(), self.log_scale]
        self.optimizer = torch.optim.Adam(self.params, lr=lr)
        self.counts = [torch.zeros(k, dtype=torch.float64) for _ in range(layers)]
        self.splits = [0] * layers
        # decayed use of every node of the tree: the counts prior p(k | parent)
        self.usage = [np.zeros(k ** (lv + 1)) for lv in range(layers)]
        self.prior = "learned"  # or "logits" (the CE-trained head) or "uniform"
        self.feat = feat
        self._table: TreeTable | None = None

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.params)

    def reset_counts(self) -> None:
        for c in self.counts:
            c.zero_()
        for u in self.usage:
            u[:] = 0
        self.splits = [0] * self.n_layers

    def _candidates(self, level: int, prev: torch.Tensor, feat: torch.Tensor):
        offsets, logits, nxt = self.nets[level](prev, feat)
        scale = self.log_scale[level].exp()
        return prev[:, None, :] + scale * torch.tanh(offsets), logits, nxt, scale

    def step(self, points: np.ndarray, t: int, total: int, decay: float = 1.0) -> np.ndarray:
        """One Adam step on a (B, 2) batch; returns the (B, L) chosen node ids."""
        self._table = None
        for group in self.optimizer.param_groups:  # cosine from lr to lr / 100
            frac = min(t / max(total, 1), 1.0)
            group["lr"] = self.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
        x = torch.as_tensor(points, dtype=torch.float32, device=self.device)
        b = x.shape[0]
        prev = torch.zeros(b, 2, device=self.device)
        feat = torch.zeros(b, self.feat, device=self.device)
        rows = torch.arange(b, device=self.device)
        node = torch.zeros(b, dtype=torch.int64, device=self.device)
        chosen = torch.empty(b, self.n_layers, dtype=torch.int64)
        loss = torch.zeros((), device=self.device)
        for level in range(self.n_layers):
            cands, logits, feat, scale = self._candidates(level, prev, feat)
            d = ((cands - x[:, None, :]) ** 2).sum(dim=2)
            idx = d.detach().argmin(dim=1)
            s2 = scale.detach() ** 2
            loss = loss + d[rows, idx].mean() / s2 + PULL * d.mean() / s2
            loss = loss + nn.functional.cross_entropy(logits, idx)
            prev = cands[rows, idx]
            if DETACH:
                prev, feat = prev.detach(), feat.detach()
            node = node * self.k + idx
            chosen[:, level] = node.cpu()
            self.counts[level] += torch.bincount(idx.cpu(), minlength=self.k).double()
        ids = chosen.numpy()
        for level in range(self.n_layers):
            self.usage[level] *= decay
            self.usage[level] += np.bincount(ids[:, level], minlength=self.usage[level].size)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        for level in range(self.n_layers):
            pairs = plan_splits(self.counts[level], 1, self.split_ratio, self.prune_ratio)
            for i, j in pairs:
                self._copy_head(level, i, j)
            self.splits[level] += len(pairs)
        return chosen.numpy()

    @torch.no_grad()
    def _copy_head(self, level: int, i: int, j: int) -> None:
        head = self.nets[level].head
        k = self.k
        src = [2 * i, 2 * i + 1, 2 * k + i]
        dst = [2 * j, 2 * j + 1, 2 * k + j]
        for p in (head.weight, head.bias):
            p[dst] = p[src]
            state = self.optimizer.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][dst] = state[key][src]
        noise = torch.empty(2).uniform_(-JITTER, JITTER, generator=self.gen)
        head.bias[dst[:2]] += noise.to(head.bias.device)

    @torch.no_grad()
    def table(self) -> TreeTable:
        """Every node of the tree (K^L paths enumerated) with the learned prior."""
        if self._table is not None:
            return self._table
        k = self.k
        prev = torch.zeros(1, 2, device=self.device)
        feat = torch.zeros(1, self.feat, device=self.device)
        positions, probs = [], []
        for level in range(self.n_layers):
            cands, logits, nxt, _ = self._candidates(level, prev, feat)
            positions.append(cands.reshape(-1, 2).double().cpu().numpy())
            if self.prior == "learned" and self.usage[level].any():
                use = self.usage[level].reshape(-1, k)
                total = use.sum(axis=1, keepdims=True)
                p = np.where(total > 0, use / np.where(total > 0, total, 1), 1.0 / k)
                probs.append(p.ravel())
            elif self.prior == "uniform":
                probs.append(np.full(k ** (level + 1), 1.0 / k))
            else:
                probs.append(torch.softmax(logits.double(), dim=1).reshape(-1).cpu().numpy())
            prev = cands.reshape(-1, 2)
            feat = nxt.repeat_interleave(k, dim=0)
        self._table = TreeTable(k, positions, probs)
        return self._table

    def state_dict(self) -> dict:
        return {
            "nets": {k: v.detach().cpu().clone() for k, v in self.nets.state_dict().items()},
            "log_scale": self.log_scale.detach().cpu().clone(),
            "optimizer": self.optimizer.state_dict(),
            "counts": [c.clone() for c in self.counts],
            "splits": list(self.splits),
            "gen": self.gen.get_state(),
            "usage": [torch.from_numpy(u.copy()) for u in self.usage],
        }

    def load_state_dict(self, state: dict) -> None:
        self.nets.load_state_dict(state["nets"])
        with torch.no_grad():
            self.log_scale.copy_(state["log_scale"])
        self.optimizer.load_state_dict(state["optimizer"])
        for c, v in zip(self.counts, state["counts"], strict=True):
            c.copy_(v)
        self.splits = [int(s) for s in state["splits"]]
        self.gen.set_state(state["gen"])
        for u, v in zip(self.usage, state["usage"], strict=True):
            u[:] = v.numpy()
        self._table = None
