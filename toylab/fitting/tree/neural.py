"""The neural hierarchical DDN: a network per layer proposes the K candidates, as in the paper.

Layer l is an MLP (2 x `width` SiLU) reading Fourier features of the point chosen above, the
features of learned multiresolution grids at that point (16^2 to 128^2 cells, 8 features each,
bilinear: a neural field's local capacity, which Fourier features alone lack at hard edges) and
a feature carried down from the layer above: tanh(the layer's own feature output + a learned
embedding of the chosen head index), the paper's carried feature map. It outputs K offsets
(and, optionally, K prior logits) and that feature. Candidate k = previous point +
s_l tanh(offset_k), s_l a learned per-layer scale starting at ratio^l, ratio = 1.27 / sqrt(K).
Training, per batch: every point descends the tree taking at each layer the candidate nearest
it (no gradient through the choice); the loss is the chosen candidate's squared error / s_l^2
(s_l detached) plus a small pull of all K candidates toward the points reaching their parent
(keeps unchosen heads near the data); Adam with a cosine-decayed learning rate. A point's
network input depends only on its path, so the forward pass runs once per node of the tree
(1 + K + ... + K^(L-1) rows) and the loss is summed per node from the count and the sum of
the points that chose it: the same loss as per point, at a cost independent of the batch.
Split-and-Prune on each layer's head counts copies head i's output rows, its index embedding
(and every lower layer's weights keyed by it) and their Adam state into the least used head j,
with a tiny jitter so the two can separate. Sampling follows the learned prior p(k | parent)
(each node's decayed use by the data). The whole tree is enumerated (K^L paths) into a
TreeTable for sampling and guides.

The polish, the last `polish` fraction of a target's steps: the layers above the last are
frozen (their nodes and the last layer's inputs computed once) and the last layer alone is
fitted Lloyd-style: each leaf is regressed onto the centroid of its points in a ring of the
newest `polish_points` points (re-assigned every `polish_every` steps), weighted by its count
to the power `polish_power`, with Adam steps of its own. The loss of the main phase moves a
leaf by one batch's noisy mean; the polish targets the mean of a million points, which puts
the "sliver" leaves at a curved edge back inside the stroke (spiral 0.34 -> 0.025 at 1,500
steps; benchmarks/README.md, "fourth pass"). The prior is then the ring's recount under the
final leaves, the maximum-likelihood prior of the final tree.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from toylab.fitting.ring import push_points
from toylab.fitting.splitting import plan_splits
from toylab.fitting.tree.points import _descend
from toylab.fitting.tree.table import TreeTable

DETACH = True  # each layer's loss trains that layer only (the chain is not backpropagated)
JITTER = 1e-3  # noise added to a copied head's bias so the copies can part
# Defaults of the network (exploration patches this dict; see benchmarks/README.md).
OPTIONS = {
    "width": 128,  # hidden width of each layer's MLP
    "feat": 32,  # carried feature size
    "ratio": None,  # initial scale of layer l is ratio^l (learned); None: 1.27 / sqrt(K), which
    # is the tree of points' 0.45 at K = 8 (a layer's cells shrink about sqrt(K) a layer)
    "pull": 0.01,  # weight of the pull of every candidate toward the data point
    "freqs": 6,  # Fourier octaves of the previous point
    "embed": True,  # carry a learned embedding of the chosen head index down
    "detach_feat": True,  # the carried feature is detached too (else layer l+1 trains layer l)
    "logits": False,  # train a prior head p(k | parent) by cross-entropy (prior "logits")
    "depth": 2,  # hidden layers per MLP
    "residual": False,  # hidden layers as residual blocks
    "lr_end": 0.01,  # the cosine ends at lr * lr_end
    "warmup": 0.0,  # fraction of steps of linear warm-up
    "split_until": 0.5,  # Split-and-Prune only in this first fraction of a target's steps (a late
    # copy moves head j in every parent, with too little learning rate left to repair it)
    "path": False,  # layer l also reads the one-hot code of the chosen indices above it
    "sibs": False,  # layer l also reads the chosen node's siblings relative to it (its cell)
    "experts": 0,  # e > 0: layers below e have K^e weight sets, one per choice of the first e
    # learned feature grids over the square, read (bilinearly) at the point chosen above: the
    # local capacity that places leaves at hard edges (checkerboard 0.19 -> 0.03, QR 0.67 -> 0.25
    # at 1,500 steps; benchmarks/README.md, "third pass"); () for none
    "grid": (16, 32, 64, 128),
    "grid_feat": 8,  # features per grid
    "grid_from": 1,  # the layers from this one read the grids (layer 0 reads only the origin)
    # the last `polish` fraction of a target's steps fits the last layer alone, Lloyd-style:
    # the leaves are regressed onto the centroids of their points in a ring of the latest
    # `polish_points` points (re-assigned every `polish_every` steps), `polish_adam` Adam steps
    # of their own (lr `polish_lr`, cosine to a tenth) per step, each leaf weighted by
    # count^`polish_power`; the prior is the ring's recount (benchmarks/README.md, fourth pass)
    "polish": 0.5,
    "polish_points": 1 << 20,
    "polish_every": 25,
    "polish_adam": 4,
    "polish_lr": 3e-3,
    "polish_power": 0.5,
}


class _GLinear(nn.Module):
    """G linear maps in one: rows come in G contiguous groups (the subtrees of the first
    `experts` layers' choices), group g through map g (one batched matmul)."""

    def __init__(self, groups: int, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(groups, n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(groups, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.weight.shape[0]
        if g == 1:
            return nn.functional.linear(x, self.weight[0], self.bias[0])
        xg = x.reshape(g, -1, x.shape[1])
        out = torch.baddbmm(self.bias[:, None, :], xg, self.weight.transpose(1, 2))
        return out.reshape(x.shape[0], -1)


class _Layer(nn.Module):
    def __init__(self, k: int, width: int, feat: int, opt: dict, level: int = 0):
        super().__init__()
        e = int(opt["experts"])
        groups = k**e if e and level >= e else 1
        # the first linear map of the one-hot path code (K inputs per layer above): per layer
        # above, a K x width matrix whose row k is added when head k was chosen there
        self.codes = nn.Parameter(torch.zeros(level, k, width)) if opt["path"] and level else None
        self.k, self.feat, self.freqs = k, feat, int(opt["freqs"])
        self.residual = bool(opt["residual"])
        self.logits = bool(opt["logits"])
        self.sibs = 2 * k if opt["sibs"] else 0
        res = tuple(opt["grid"]) if level >= int(opt["grid_from"]) else ()
        gf = int(opt["grid_feat"])
        self.grids = nn.ParameterList([nn.Parameter(torch.zeros(1, gf, r, r)) for r in res])
        n_in = 4 * self.freqs + 2 + feat + self.sibs + gf * len(res)
        self.inp = _GLinear(groups, n_in, width)
        self.hidden = nn.ModuleList(
            [_GLinear(groups, width, width) for _ in range(int(opt["depth"]) - 1)]
        )
        self.head = _GLinear(groups, width, (3 if self.logits else 2) * k + feat)
        # the learned embedding of each head's index, added to the feature carried down
        self.embed = nn.Embedding(k, feat) if opt["embed"] else None

    def forward(self, prev: torch.Tensor, feat: torch.Tensor, path=None, sibs=None):
        freqs = (2.0 ** torch.arange(self.freqs, dtype=prev.dtype, device=prev.device)) * math.pi
        angles = (prev[:, :, None] * freqs).flatten(1)
        parts = [prev, angles.sin(), angles.cos(), feat]
        if len(self.grids):  # each grid's features at prev: (rows, grid_feat)
            where = prev.view(1, -1, 1, 2)
            for g in self.grids:
                got = nn.functional.grid_sample(g, where, align_corners=True, padding_mode="border")
                parts.append(got[0, :, :, 0].t())
        if self.sibs:
            parts.append(sibs if sibs is not None else prev.new_zeros(prev.shape[0], self.sibs))
        h = self.inp(torch.cat(parts, 1))
        if self.codes is not None:  # path: (rows, level) chosen index per layer above
            for j in range(self.codes.shape[0]):
                h = h + self.codes[j][path[:, j]]
        h = nn.functional.silu(h)
        for lin in self.hidden:
            h = h + nn.functional.silu(lin(h)) if self.residual else nn.functional.silu(lin(h))
        h = self.head(h)
        k = self.k
        off = h[:, : 2 * k].view(-1, k, 2)
        logits = h[:, 2 * k : 3 * k] if self.logits else None
        return off, logits, h[:, -self.feat :]

    def carried(self, base: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        """The feature carried below: (B, F) for the chosen heads idx, or (B * K, F) for all."""
        if self.embed is None:
            out = torch.tanh(base)
            return out if idx is not None else out.repeat_interleave(self.k, dim=0)
        if idx is not None:
            return torch.tanh(base + self.embed(idx))
        return torch.tanh(base[:, None, :] + self.embed.weight[None]).reshape(-1, self.feat)


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
        width: int | None = None,
        feat: int | None = None,
        ratio: float | None = None,
        **options,
    ):
        torch.set_flush_denormal(True)  # denormals made CPU steps up to 5x slower
        opt = {**OPTIONS, **options}
        width = int(opt["width"] if width is None else width)
        feat = int(opt["feat"] if feat is None else feat)
        ratio = opt["ratio"] if ratio is None else ratio
        ratio = float(1.27 / math.sqrt(k) if ratio is None else ratio)
        self.opt = opt
        self.k, self.n_layers, self.lr = k, layers, lr
        self.device = torch.device(device)
        self.split_ratio, self.prune_ratio = split_ratio, prune_ratio
        self.gen = torch.Generator()
        self.gen.manual_seed(int(rng.integers(2**62)))
        self.nets = nn.ModuleList([_Layer(k, width, feat, opt, lv) for lv in range(layers)])
        with torch.no_grad():
            for name, p in self.nets.named_parameters():  # initialised from our own stream
                if ".grids." in name:  # feature grids start near 0, as in Instant-NGP
                    bound = 1e-4
                else:
                    bound = 0.05 if name.endswith("bias") else 1.0 / math.sqrt(p.shape[-1])
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
        # where each layer's nodes start in the flat array of every layer (the descent's layout)
        self._offsets = np.cumsum([0] + [k ** (lv + 1) for lv in range(layers)]).astype(np.int64)
        self.prior = "learned"  # or "logits" (the CE-trained head) or "uniform"
        self.feat = feat
        self._table: TreeTable | None = None
        self._table_prior = self.prior
        self._polish: dict | None = None  # the polish phase's state (see _begin_polish)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.params)

    def reset_counts(self) -> None:
        for c in self.counts:
            c.zero_()
        for u in self.usage:
            u[:] = 0
        self.splits = [0] * self.n_layers
        self._polish = None

    def _candidates(self, level: int, prev, feat, path=None, sibs=None):
        offsets, logits, base = self.nets[level](prev, feat, path, sibs)
        scale = self.log_scale[level].exp()
        return prev[:, None, :] + scale * torch.tanh(offsets), logits, base, scale

    def _lr(self, t: int, total: int) -> float:
        frac = min(t / max(total, 1), 1.0)
        end, warm = float(self.opt["lr_end"]), float(self.opt["warmup"])
        lr = self.lr * (end + (1 - end) * 0.5 * (1 + math.cos(math.pi * frac)))
        return lr * min(1.0, (t + 1) / (warm * total)) if warm > 0 else lr

    def _expand(self, grad: bool, stop: int | None = None):
        """Run every layer over every node of the layer above (1, K, ..., K^(L-1) rows): per
        layer the (K^l, K, 2) candidates, the prior logits and the scale. A point's network
        input is a function of its path only, so this is the batch's forward pass computed
        once per distinct parent (and for the parents no point reached). With `stop`, the
        layers above it only, and the list ends with layer `stop`'s inputs
        (prev, feat, path, sibs)."""
        prev = torch.zeros(1, 2, device=self.device)
        feat = torch.zeros(1, self.feat, device=self.device)
        sibs = None
        out = []
        for level in range(self.n_layers):
            path = None
            if self.nets[level].codes is not None:  # digits of every parent's index
                ids = torch.arange(self.k**level, device=self.device)
                powers = self.k ** torch.arange(level - 1, -1, -1, device=self.device)
                path = (ids[:, None] // powers) % self.k
            if level == stop:
                out.append((prev, feat, path, sibs))
                break
            cands, logits, base, scale = self._candidates(level, prev, feat, path, sibs)
            out.append((cands, logits, scale))
            if level == self.n_layers - 1:
                break
            if self.nets[level + 1].sibs:  # each child's siblings relative to it, in scales
                c = cands.detach() if grad else cands
                rel = (c[:, None, :, :] - c[:, :, None, :]) / scale.detach()
                sibs = rel.reshape(-1, 2 * self.k)
            prev = cands.reshape(-1, 2)
            feat = self.nets[level].carried(base, None)
            if grad and DETACH:
                prev = prev.detach()
            if grad and self.opt["detach_feat"]:
                feat = feat.detach()
        return out

    def step(self, points: np.ndarray, t: int, total: int, decay: float = 1.0) -> np.ndarray:
        """One Adam step on a (B, 2) batch; returns the (B, L) chosen node ids.

        Every point descends the tree taking the nearest candidate at each layer (the compiled
        descent of the tree of points, on the candidates of every parent); the loss of a
        candidate needs only the count and the sum of the points that chose it (and, for the
        pull, of those that reached its parent), so it is computed per node, not per point."""
        self._table = None
        if t >= total - self._polish_steps(total):
            return self._polish_step(points, t, total)
        for group in self.optimizer.param_groups:  # cosine from lr to lr * lr_end
            group["lr"] = self._lr(t, total)
        expanded = self._expand(grad=True)
        flat_t = torch.cat([c.detach().reshape(-1, 2) for c, _, _ in expanded])
        flat = flat_t.to("cpu", torch.float64).numpy()
        offsets = self._offsets
        chosen, sums, hits = _descend(flat, offsets, self.k, points, "l2")
        b = points.shape[0]
        pull = float(self.opt["pull"])
        loss = torch.zeros((), device=self.device)
        for level, (cands, logits, scale) in enumerate(expanded):
            a, z = offsets[level], offsets[level + 1]
            h = torch.as_tensor(hits[a:z], dtype=torch.float32, device=self.device)
            sm = torch.as_tensor(sums[a:z], dtype=torch.float32, device=self.device)
            h, sm = h.view(-1, self.k), sm.view(-1, self.k, 2)
            mean = sm / h.clamp(min=1.0)[..., None]
            s2 = scale.detach() ** 2
            # sum over points of |candidate - point|^2 = h |c - mean|^2 + a constant
            loss = loss + (h * ((cands - mean) ** 2).sum(2)).sum() / (b * s2)
            if pull:  # every candidate toward each point reaching its parent
                n = h.sum(1)
                pmean = sm.sum(1) / n.clamp(min=1.0)[:, None]
                d = ((cands - pmean[:, None, :]) ** 2).sum(2)
                loss = loss + pull * (n[:, None] * d).sum() / (b * self.k * s2)
            if logits is not None:
                loss = loss - (h * torch.log_softmax(logits, dim=1)).sum() / b
            self.counts[level] += torch.from_numpy(hits[a:z].reshape(-1, self.k).sum(0))
            self.usage[level] *= decay
            self.usage[level] += hits[a:z]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if t >= float(self.opt["split_until"]) * total:
            return chosen
        for level in range(self.n_layers):
            pairs = plan_splits(self.counts[level], 1, self.split_ratio, self.prune_ratio)
            for i, j in pairs:
                self._copy_head(level, i, j)
            self.splits[level] += len(pairs)
        return chosen

    # -- the polish: the last layer alone, regressed onto its leaves' centroids -------------
    def _polish_steps(self, total: int) -> int:
        return round(float(self.opt["polish"]) * total)

    def _begin_polish(self) -> None:
        """Freeze the layers above the last: their nodes and the last layer's inputs are
        computed once; the ring of points starts empty; the last layer gets its own Adam."""
        last = self.n_layers - 1
        with torch.no_grad():
            *upper, inputs = self._expand(grad=False, stop=last)
            flat = [c.reshape(-1, 2).double().cpu().numpy() for c, _, _ in upper]
        cap = int(self.opt["polish_points"])
        self._polish = {
            "inputs": inputs,
            "upper": np.concatenate(flat) if flat else np.zeros((0, 2)),
            "ring": np.zeros((cap, 2)),
            "filled": 0,
            "at": 0,
            "optimizer": torch.optim.Adam(self.nets[last].parameters(), lr=self.opt["polish_lr"]),
            "weights": None,
            "centroids": None,
        }

    def _leaves(self, grad: bool = False) -> torch.Tensor:
        """The (K^(L-1), K, 2) leaves from the frozen layers' cached inputs."""
        prev, feat, path, sibs = self._polish["inputs"]
        scale = self.log_scale[self.n_layers - 1].detach().exp()
        with torch.set_grad_enabled(grad):
            offsets, _, _ = self.nets[-1](prev, feat, path, sibs)
            return prev[:, None, :] + scale * torch.tanh(offsets)

    def _descend_all(self, points: np.ndarray):
        leaves = self._leaves().reshape(-1, 2).double().cpu().numpy()
        flat = np.concatenate([self._polish["upper"], leaves])
        return _descend(flat, self._offsets, self.k, points, "l2")

    def _assign_ring(self) -> None:
        """Each leaf's centroid and weight from the ring's points; the prior is their recount."""
        pol = self._polish
        _, sums, hits = self._descend_all(pol["ring"][: pol["filled"]])
        offsets = self._offsets
        for level in range(self.n_layers):
            self.usage[level][:] = hits[offsets[level] : offsets[level + 1]]
        a = offsets[-2]
        h = torch.as_tensor(hits[a:], dtype=torch.float32, device=self.device).view(-1, self.k)
        sm = torch.as_tensor(sums[a:], dtype=torch.float32, device=self.device)
        w = torch.where(h > 0, h.clamp(min=1.0) ** float(self.opt["polish_power"]), 0.0)
        pol["weights"] = w / w.sum()
        pol["centroids"] = sm.view(-1, self.k, 2) / h.clamp(min=1.0)[..., None]

    def _polish_step(self, points: np.ndarray, t: int, total: int) -> np.ndarray:
        """One step of the polish: the batch joins the ring (the oldest points leave), the
        centroids are re-taken every `polish_every` steps, then `polish_adam` Adam steps."""
        n = self._polish_steps(total)
        start = total - n
        if t == start or self._polish is None:
            self._begin_polish()
        pol = self._polish
        chosen = self._descend_all(points)[0]
        pol["at"], pol["filled"] = push_points(pol["ring"], pol["at"], pol["filled"], points)
        if (t - start) % int(self.opt["polish_every"]) == 0 or pol["weights"] is None:
            self._assign_ring()
        frac = (t - start) / max(n, 1)
        lr = float(self.opt["polish_lr"]) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        opt = pol["optimizer"]
        for group in opt.param_groups:
            group["lr"] = lr
        w, m = pol["weights"], pol["centroids"]
        s2 = self.log_scale[-1].detach().exp() ** 2
        for _ in range(int(self.opt["polish_adam"])):
            loss = (w * ((self._leaves(grad=True) - m) ** 2).sum(2)).sum() / s2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if t == total - 1:  # the prior matches the final leaves
            self._assign_ring()
        return chosen

    @torch.no_grad()
    def _copy_head(self, level: int, i: int, j: int) -> None:
        net = self.nets[level]
        head = net.head
        k = self.k
        src, dst = [2 * i, 2 * i + 1], [2 * j, 2 * j + 1]
        if net.logits:
            src, dst = [*src, 2 * k + i], [*dst, 2 * k + j]
        all_ = slice(None)  # every weight group
        rows = [(head.weight, (all_, src), (all_, dst)), (head.bias, (all_, src), (all_, dst))]
        if net.embed is not None:
            rows.append((net.embed.weight, i, j))
        for deeper in self.nets[level + 1 :]:  # the subtree below head j becomes head i's
            if deeper.codes is not None:
                rows.append((deeper.codes, (level, i), (level, j)))
        for p, a, b in rows:
            p[b] = p[a]
            state = self.optimizer.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][b] = state[key][a]
        noise = torch.empty(2).uniform_(-JITTER, JITTER, generator=self.gen)
        head.bias[:, dst[:2]] += noise.to(head.bias.device)

    @torch.no_grad()
    def table(self) -> TreeTable:
        """Every node of the tree (K^L paths enumerated) with the learned prior."""
        if self._table is not None and self._table_prior == self.prior:
            return self._table
        k = self.k
        positions, probs = [], []
        for level, (cands, logits, _) in enumerate(self._expand(grad=False)):
            positions.append(cands.reshape(-1, 2).double().cpu().numpy())
            if self.prior == "learned" and self.usage[level].any():
                use = self.usage[level].reshape(-1, k)
                total = use.sum(axis=1, keepdims=True)
                p = np.where(total > 0, use / np.where(total > 0, total, 1), 1.0 / k)
                probs.append(p.ravel())
            elif self.prior == "uniform" or logits is None:
                probs.append(np.full(k ** (level + 1), 1.0 / k))
            else:
                probs.append(torch.softmax(logits.double(), dim=1).reshape(-1).cpu().numpy())
        self._table, self._table_prior = TreeTable(k, positions, probs), self.prior
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
            "polish": self._polish_state(),
        }

    def _polish_state(self) -> dict | None:
        pol = self._polish
        if pol is None:
            return None
        return {
            "ring": torch.from_numpy(pol["ring"][: pol["filled"]].copy()),
            "at": pol["at"],
            "optimizer": pol["optimizer"].state_dict(),
            "weights": pol["weights"].cpu().clone(),
            "centroids": pol["centroids"].cpu().clone(),
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
        self._polish = None
        saved = state.get("polish")  # absent from checkpoints made before the polish
        if saved is not None:  # the frozen layers' inputs are recomputed from the loaded nets
            self._begin_polish()
            pol = self._polish
            ring = saved["ring"].numpy()
            pol["ring"][: ring.shape[0]] = ring
            pol["filled"], pol["at"] = ring.shape[0], int(saved["at"])
            pol["optimizer"].load_state_dict(saved["optimizer"])
            pol["weights"] = saved["weights"].to(self.device)
            pol["centroids"] = saved["centroids"].to(self.device)
