"""Every run parameter in one declarative table: name, type, allowed values, default, help.

In the spirit of scikit-learn's `_parameter_constraints`: `RunConfig`'s fields, `toylab run`'s
options and `toylab.fit`'s keywords are all made from `PARAMS`, and `check_all` validates a set of
values once, at the boundary (the CLI, `toylab.fit`, a resumed checkpoint). A new parameter is
one `Param(...)` line. Methods receive validated `Settings` (the entries marked `method=True`)
and never check again.

Nothing heavy is imported here (no numpy or torch), so `toylab --help` and a rejected argument
stay fast.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from toylab.catalog import DEFAULT_METHODS, method_names
from toylab.errors import ToylabError

DISTANCES = ("l1", "l2")
OPTIMIZERS = ("sgd", "adam")
DEFAULT_LR = {"sgd": 0.2, "adam": 0.01}
INDEXES = ("auto", "grid", "kdtree", "brute")
SCHEDULES = ("linear", "geometric", "cosine")
# Soft selection's beta schedule, chosen on spiral (K = 10^3 and 10^4, 10^4 steps of 10 points)
# among linear, geometric and cosine schedules with ends from 0.05 to 20,000: a long near-uniform
# phase that pulls far nodes in, ending at 50 per unit distance, gave the lowest KL.
DEFAULT_BETA_START = 0.0
DEFAULT_BETA_END = 50.0
DEFAULT_SCHEDULE = "linear"
MIN_BINS, MAX_BINS = 8, 4096  # densities.grid checks the same range
# The hierarchical DDN (--method tree, toylab/fitting/tree/).
TREE_FORMS = ("points", "neural")
TREE_PRIORS = ("learned", "uniform")
TREE_FORM_DEFAULTS = {"points": {"k": 8, "layers": 5}, "neural": {"k": 32, "layers": 3}}
TREE_MAX_LEAVES = 1 << 22  # 4M leaves: 64 MB of leaf positions; beyond that nothing is enumerated


@dataclass(frozen=True)
class Param:
    """One run parameter.

    kind: "int", "float", "str", "bool", "choice" (one of `choices`), "methods" (a comma list
    of method names, or "all") or "targets" (a comma sequence of target names).
    minimum/maximum bound numbers (inclusive); `positive` asks for a finite number > 0.
    optional: None is allowed and means the rule the help states (e.g. the optimizer's lr).
    keyword: for target options, the keyword of `densities.get` the value goes to.
    method: the value is part of the `Settings` every method receives.
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    short: str = ""
    metavar: str | None = None
    group: str = "fit"
    keyword: str = ""
    method: bool = False

    @property
    def flag(self) -> str:
        return "--" + {"targets": "target", "methods": "method"}.get(
            self.name, self.name.replace("_", "-")
        )

    def check(self, value: Any) -> Any:
        """The value in canonical form, or a one-line ToylabError naming the flag and the rule."""
        if value is None and (self.optional or self.keyword):
            return None
        return _CHECKERS[self.kind](self, value)


def _check_int(p: Param, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if (
            isinstance(value, float)
            and value.is_integer()
            or type(value).__name__.startswith("int")
            and hasattr(value, "item")
        ):
            value = int(value)
        else:
            raise ToylabError(f"{p.flag} must be an integer{_int_range(p)}, got {value!r}")
    if (p.minimum is not None and value < p.minimum) or (
        p.maximum is not None and value > p.maximum
    ):
        raise ToylabError(f"{p.flag} must be an integer{_int_range(p)}, got {value!r}")
    return value


def _int_range(p: Param) -> str:
    if p.minimum is not None and p.maximum is not None:
        return f" from {p.minimum:g} to {p.maximum:g}"
    return f" >= {p.minimum:g}" if p.minimum is not None else ""


def _check_float(p: Param, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ToylabError(f"{p.flag} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise ToylabError(f"{p.flag} must be a finite number, got {value!r}")
    if p.positive and v <= 0:
        raise ToylabError(f"{p.flag} must be a positive finite number, got {value!r}")
    if p.minimum is not None and v < p.minimum:
        raise ToylabError(f"{p.flag} must be a finite number >= {p.minimum:g}, got {value!r}")
    if p.maximum is not None and v > p.maximum:
        raise ToylabError(f"{p.flag} must be at most {p.maximum:g}, got {value!r}")
    return v


def _check_str(p: Param, value: Any) -> str:
    if not isinstance(value, str):
        raise ToylabError(f"{p.flag} must be a string, got {value!r}")
    return value


def _check_bool(p: Param, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ToylabError(f"{p.flag} must be true or false, got {value!r}")
    return value


def _check_choice(p: Param, value: Any) -> str:
    if value not in p.choices:
        raise ToylabError(
            f"unknown {p.flag} {value!r}; choose from: {', '.join(p.choices)}"
            + did_you_mean(value, p.choices)
        )
    return value


def _check_methods(p: Param, value: Any) -> list[str]:
    valid = method_names()
    items = [m.strip() for m in value.split(",")] if isinstance(value, str) else list(value)
    if items == ["all"]:
        return valid
    if not items:
        raise ToylabError(f"at least one method is needed; choose from: {', '.join(valid)}, all")
    for m in items:
        if m not in valid:
            raise ToylabError(
                f"unknown method {m!r}; choose from: {', '.join(valid)} (or all)"
                + did_you_mean(m, valid)
            )
    if len(set(items)) != len(items):
        raise ToylabError(f"a method is listed twice in {','.join(items)}")
    return items


def _check_targets(p: Param, value: Any) -> list[str]:
    import densities

    names = densities.parse_names(value) if isinstance(value, str) else list(value)
    if not names:
        raise ToylabError("at least one target is needed")
    for name in names:
        densities.target(name)
    return names


_CHECKERS: dict[str, Callable[[Param, Any], Any]] = {
    "int": _check_int,
    "float": _check_float,
    "str": _check_str,
    "bool": _check_bool,
    "choice": _check_choice,
    "methods": _check_methods,
    "targets": _check_targets,
}


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest choice, or '' when none is close."""
    text = str(value).lower().replace("-", "_")
    match = difflib.get_close_matches(text, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


P = Param
# fmt: off
PARAMS: tuple[Param, ...] = (
    P("targets", "targets", ["spiral"], "target or comma sequence fitted one after another, nodes carried over; see `toylab densities --list`", metavar="NAMES"),
    P("nodes", "int", 10_000, "number of nodes K", minimum=2, short="-k", metavar="K"),
    P("methods", "methods", list(DEFAULT_METHODS), "comma list of methods fitted side by side, or all", metavar="LIST"),
    P("steps", "int", 10_000, "steps per target", minimum=1),
    P("batch", "int", 10, "points per step", minimum=1, method=True),
    P("distance", "choice", "l1", "matching distance (l1 as the reference)", choices=DISTANCES, method=True),
    P("optimizer", "choice", "sgd", f"sgd: the reference's rule, node += 2 lr (x - node) per point (default lr {DEFAULT_LR['sgd']}); adam: per-node Adam on matched nodes (default lr {DEFAULT_LR['adam']})", choices=OPTIMIZERS, method=True),
    P("lr", "float", None, "learning rate (default: the optimizer's, see --optimizer)", positive=True, optional=True, method=True),
    P("max_splits", "int", 1, "Split-and-Prune: splits at most per step (1 = the paper's pace)", minimum=0, metavar="N", method=True),
    P("split_ratio", "float", 2.0, "split a node whose share exceeds R/K", positive=True, metavar="R", method=True),
    P("prune_ratio", "float", 0.5, "prune a node whose share is below R/K", positive=True, metavar="R", method=True),
    P("beta_start", "float", DEFAULT_BETA_START, "beta at the start of each target, per unit distance", minimum=0, metavar="B0", group="soft", method=True),
    P("beta_end", "float", DEFAULT_BETA_END, "beta at the end of each target, >= B0", minimum=0, metavar="B1", group="soft", method=True),
    P("beta_schedule", "choice", DEFAULT_SCHEDULE, "how beta goes from B0 to B1", choices=SCHEDULES, group="soft", method=True),
    P("seed", "int", 0, "random seed", minimum=0),
    P("device", "str", "cpu", "torch device: cpu or cuda[:N]"),
    P("threads", "int", None, "threads of torch and of the compiled kernels (default 1, fastest for small batches; 2 pays at K >= 10^5 with batches of thousands; results do not depend on it)", minimum=1, optional=True),
    P("index", "choice", "auto", "nearest-node search: auto (the compiled grid index on CPU, brute force on a GPU), grid, kdtree (an exact KD-tree that follows moving nodes) or brute", choices=INDEXES, method=True),
    P("replay_window", "int", 32, "replay: points kept per node, the buffer of the current target's points that each refit re-reads (at most 4M points in all)", minimum=1, metavar="N", method=True),
    P("tree_form", "choice", "points", "points: every parent owns K free child points; neural: an MLP per layer proposes the K candidates (the paper's model)", choices=TREE_FORMS, group="tree", method=True),
    P("layers", "int", None, "layers L (default 5 for points, 3 for neural)", minimum=1, optional=True, metavar="L", group="tree", method=True),
    P("k", "int", None, "candidates per layer (default 8 for points, 32 for neural; -k is --nodes)", minimum=2, optional=True, metavar="K", group="tree", method=True),
    P("tree_step", "float", 0.3, "points: a chosen node moves this fraction toward its points, cosine-decayed over each target to --tree-step-end", positive=True, maximum=1, metavar="S", group="tree", method=True),
    P("tree_step_end", "float", 0.006, "points: the step at the end of each target", positive=True, maximum=1, metavar="S", group="tree", method=True),
    P("tree_ratio", "float", 0.45, "points: initial offset scale of layer l is R^l", positive=True, metavar="R", group="tree", method=True),
    P("tree_lr", "float", 6e-3, "neural: Adam learning rate, cosine-decayed to lr / 100", positive=True, metavar="LR", group="tree", method=True),
    P("tree_eval_samples", "int", 1_000_000, "the model is also scored on N samples: kl_model in metrics.json", minimum=1, metavar="N", group="tree", method=True),
    P("tree_prior", "choice", "learned", "how a sample picks a child: learned = in proportion to its recent use by the data, uniform = 1/K as in the paper", choices=TREE_PRIORS, group="tree", method=True),
    P("frames", "int", 96, "GIF frames recorded per target (0 = none)", minimum=0),
    P("eval_every", "int", None, "also log the KL every N steps (default: once per frame)", minimum=1, optional=True, metavar="N"),
    P("bins", "int", 100, "grid size per side", minimum=MIN_BINS, maximum=MAX_BINS, group="target"),
    P("qr_data", "str", None, "payload of the qr target", metavar="TEXT", group="target", keyword="data"),
    P("text", "str", None, "text of the words target (use \\n for new lines)", group="target", keyword="text"),
    P("image", "str", None, "PNG/JPEG/.npy file for the image target", metavar="PATH", group="target", keyword="path"),
    P("invert", "bool", None, "image target: dark is mass", group="target", keyword="invert"),
    P("spiral_turns", "float", None, "spiral target: turns of each arm", metavar="T", group="target", keyword="turns"),
    P("spiral_width", "float", None, "spiral target: arm width at the centre", metavar="W", group="target", keyword="width"),
)
# fmt: on
del P

BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}
CONFIG_PARAMS = tuple(p for p in PARAMS if not p.keyword)  # RunConfig fields
TARGET_PARAMS = tuple(p for p in PARAMS if p.keyword)  # go to RunConfig.target_options
METHOD_PARAMS = tuple(p for p in PARAMS if p.method)  # what Settings carries


def check_all(values: dict[str, Any]) -> dict[str, Any]:
    """Check every RunConfig field in `values` and the rules between them; return them
    canonical (comma strings split, numbers coerced). One-line ToylabError on the first bad one."""
    out = {name: BY_NAME[name].check(value) for name, value in values.items() if name in BY_NAME}
    for rule in CROSS_RULES:
        rule(out)
    return out


def _lr_is_stable(v: dict[str, Any]) -> None:
    if v.get("lr") is not None and v.get("optimizer") == "sgd" and v["lr"] > 1:
        raise ToylabError(
            f"--lr {v['lr']} is unstable for sgd (a step of 2 lr overshoots); use 0 < lr <= 1"
        )


def _beta_anneals(v: dict[str, Any]) -> None:
    start, end = v.get("beta_start", DEFAULT_BETA_START), v.get("beta_end", DEFAULT_BETA_END)
    if end < start:
        raise ToylabError(
            f"--beta-end {end} is below --beta-start {start}; an annealing schedule needs end >= start"
        )
    if v.get("beta_schedule") == "geometric" and start <= 0:
        raise ToylabError(f"--beta-schedule geometric needs --beta-start > 0, got {start}")


def _tree_fits(v: dict[str, Any]) -> None:
    form = TREE_FORM_DEFAULTS[v.get("tree_form", "points")]
    k = v.get("k") if v.get("k") is not None else form["k"]
    layers = v.get("layers") if v.get("layers") is not None else form["layers"]
    if k**layers > TREE_MAX_LEAVES:
        raise ToylabError(
            f"--k {k} --layers {layers} gives {k**layers} leaves; at most {TREE_MAX_LEAVES} are allowed"
        )


# Rules between parameters, checked after each value on its own.
CROSS_RULES: tuple[Callable[[dict[str, Any]], None], ...] = (
    _lr_is_stable,
    _beta_anneals,
    _tree_fits,
)


def help_text(p: Param, default: Any = None) -> str:
    """The option's help with its allowed range and default, as --help shows it."""
    value = p.default if default is None else default
    notes = []
    if p.minimum is not None and p.maximum is not None:
        notes.append(f"{p.minimum:g}..{p.maximum:g}")
    if not (p.keyword or value is None or p.optional):
        if isinstance(value, list):
            notes.append(f"default {','.join(value)}")
        else:
            notes.append(f"default {value:g}" if isinstance(value, float) else f"default {value}")
    return f"{p.help} ({', '.join(notes)})" if notes else p.help


def add_options(parser: Any, names: Iterable[str], defaults: dict[str, Any] | None = None) -> None:
    """Add the options `names` to an argparse parser (or group) with the table's help.

    Defaults stay None on the parser so a command can tell given options from unset ones;
    `defaults` only changes the default the help shows (a command with its own defaults).
    """
    defaults = defaults or {}
    for name in names:
        p = BY_NAME[name]
        flags = [p.flag, p.short] if p.short else [p.flag]
        kwargs: dict[str, Any] = {"default": None, "help": help_text(p, defaults.get(name))}
        if p.kind == "bool":
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = {"int": int, "float": float}.get(p.kind, str)
            kwargs["metavar"] = p.metavar or (
                "{" + ",".join(p.choices) + "}" if p.choices else None
            )
        parser.add_argument(*flags, dest=p.name, **kwargs)


def given(args: Any, names: Iterable[str]) -> dict[str, Any]:
    """The options among `names` set on the command line (parsed argparse namespace)."""
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            if name == "text":
                value = value.replace("\\n", "\n")
            out[name] = value
    return out


# What every method receives: the entries marked method=True, validated, with `lr` resolved to
# the optimizer's default (RunConfig.settings() builds it; tests may build one directly).
Settings = make_dataclass(
    "Settings",
    [(p.name, Any, field(default=p.default)) for p in METHOD_PARAMS],
    frozen=True,
)
Settings.__module__ = __name__
Settings.__doc__ = "Validated hyperparameters shared by the methods of a run (see PARAMS)."
