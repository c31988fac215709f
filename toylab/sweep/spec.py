"""A sweep spec (TOML): fixed run options and axes; the grid of cells is their product.

    [fixed]                 # options every cell shares
    steps = 2000
    [axes]                  # one list of values per option; the cells are the product
    target = ["spiral", "qr"]
    nodes = [1000, 10000]
    seed = [0, 1, 2]
    [output]                # optional per-cell pictures (all off by default)
    gif = true

A key is any long option of `toylab run` (`max-splits` or `max_splits`), target options
included. Each cell's options are turned into `toylab run` argv and parsed by the real run
parser, then `config_from_args` builds the validated RunConfig, so a sweep accepts exactly
what `toylab run` accepts. Every cell is checked before anything is written.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from toylab.config import RunConfig
from toylab.errors import ToylabError

DEFAULT_MAX_CELLS = 1000
"""A grid larger than this needs --yes (a typo such as seed = [0, ..., 999] costs hours)."""

SECTIONS = ("fixed", "axes", "output")
OUTPUT_KEYS = {
    "gif": "comparison.gif of each cell",
    "report": "report.html of each cell",
    "final_png": "final.png of each cell",
}
# Options of `toylab run` that are not part of a cell: the sweep decides them.
NOT_CELL_OPTIONS = {
    "out": "the sweep writes each cell to OUT/cells/<name>",
    "force": "the sweep writes each cell to OUT/cells/<name>",
    "resume": "use `toylab sweep --resume`",
    "quiet": "the sweep shows one progress bar over cells",
    "threads": "the sweep runs each cell on 1 thread, one cell per worker",
    "fps": "a sweep's GIFs use the defaults; re-render a cell with `toylab gif DIR --fps N`",
    "scale": "a sweep's GIFs use the defaults; re-render a cell with `toylab gif DIR --scale N`",
    "mp4": "a sweep writes no MP4; make one from a cell with `toylab gif DIR --mp4`",
    "help": "not an option",
}


class SpecError(ToylabError):
    """A bad sweep spec: the message names the key and what is allowed."""


class _RaisingParser(argparse.ArgumentParser):
    """The run parser, raising instead of exiting, so a bad value becomes a SpecError."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SpecError(message)


@dataclass
class Cell:
    """One point of the grid: its axis values, its `toylab run` argv and validated config."""

    name: str
    values: dict[str, Any]  # axis key -> value (the spec's spelling of the key)
    argv: list[str]
    config: RunConfig

    def payload(self, output: dict[str, Any]) -> dict[str, Any]:
        """What a worker needs to run this cell: plain data, picklable and small."""
        return {
            "name": self.name,
            "config": self.config.to_dict(),
            "argv": list(self.argv),
            "output": dict(output),
        }


@dataclass
class SweepSpec:
    """A parsed and fully validated spec: its cells in grid order."""

    path: Path | None
    text: str
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]
    output: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)

    @property
    def axis_dests(self) -> dict[str, str]:
        """Axis key -> results.csv column of that option."""
        return {k: option_dest(k) for k in self.axes}


def run_parser() -> argparse.ArgumentParser:
    """A fresh `toylab run` parser (the one the CLI uses), raising SpecError on bad input."""
    from toylab.cli import run_cmd

    top = _RaisingParser(prog="toylab")
    sub = top.add_subparsers(parser_class=_RaisingParser)
    run_cmd.add_parser(sub)
    return sub.choices["run"]


def run_options(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.Action]:
    """Long option name (without --) -> its argparse action, for every option of `toylab run`."""
    parser = parser or run_parser()
    out = {}
    for action in parser._actions:  # argparse has no public list of a parser's options
        for s in action.option_strings:
            if s.startswith("--"):
                out[s[2:]] = action
    return out


def option_dest(key: str) -> str:
    """The results.csv column of a spec key: the run option's argparse dest."""
    key = normalise_key(key)
    return {"target": "targets", "method": "methods"}.get(key, key.replace("-", "_"))


def normalise_key(key: str) -> str:
    return str(key).strip().replace("_", "-")


def _to_argv(key: str, value: Any, action: argparse.Action, where: str) -> list[str]:
    flag = "--" + key
    if action.nargs == 0:  # a flag such as --invert
        if not isinstance(value, bool):
            raise SpecError(f"{where}: {key} is a flag; give true or false, got {value!r}")
        return [flag] if value else []
    if isinstance(value, bool):
        raise SpecError(f"{where}: {key} takes a value, not {str(value).lower()}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: {key} = {value!r} is not a finite number")
    if isinstance(value, (int, float, str)):
        return [f"{flag}={value}"]
    raise SpecError(
        f"{where}: {key} = {value!r} must be a string, number or boolean "
        '(a comma list such as "gd,sp" for several methods in one cell)'
    )


def _slug(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        value = f"{value:g}"
    text = str(value)
    if "/" in text or "\\" in text:
        text = Path(text).stem  # an image path: its file name is enough for a readable name
    text = text.replace(",", "+")
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:40] or "x"


def cell_name(values: dict[str, Any], argv: list[str]) -> str:
    """A stable directory name: the axis values, then a hash of the cell's full argv (so a
    change of any option, fixed ones included, gives a new cell instead of reusing an old one)."""
    digest = hashlib.sha256(json.dumps(sorted(argv)).encode()).hexdigest()[:8]
    parts = [f"{normalise_key(k)}-{_slug(v)}" for k, v in values.items()]
    readable = "_".join(parts)[:120]
    return f"{readable}_{digest}" if readable else f"cell_{digest}"


def _check_key(
    key: str, options: dict[str, argparse.Action], where: str, path_label: str
) -> tuple[str, argparse.Action]:
    norm = normalise_key(key)
    if norm in NOT_CELL_OPTIONS:
        raise SpecError(
            f"{path_label}: {where}.{key}: not a sweep option ({NOT_CELL_OPTIONS[norm]})"
        )
    if norm not in options:
        allowed = ", ".join(sorted(k for k in options if k not in NOT_CELL_OPTIONS))
        raise SpecError(
            f"{path_label}: {where}.{key}: unknown option; any `toylab run` option: {allowed}"
        )
    return norm, options[norm]


def parse_spec(
    text: str,
    path: Path | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
    yes: bool = False,
) -> SweepSpec:
    """Parse and validate a spec's text; every cell is checked. Raises SpecError (one line)."""
    label = str(path) if path is not None else "spec"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{label}: not valid TOML: {err}") from None
    for section in data:
        if section not in SECTIONS:
            raise SpecError(
                f"{label}: unknown section [{section}]; allowed: {', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if not isinstance(data[section], dict):
            raise SpecError(f"{label}: {section} must be a table: [{section}]")
    fixed = dict(data.get("fixed", {}))
    axes = dict(data.get("axes", {}))
    output = dict(data.get("output", {}))
    for key, value in output.items():
        if key not in OUTPUT_KEYS:
            allowed = ", ".join(OUTPUT_KEYS)
            raise SpecError(f"{label}: output.{key}: unknown output option; allowed: {allowed}")
        if not isinstance(value, bool):
            raise SpecError(f"{label}: output.{key}: give true or false, got {value!r}")
    output = {k: bool(output.get(k, False)) for k in OUTPUT_KEYS}

    parser = run_parser()
    options = run_options(parser)
    seen: dict[str, str] = {}
    fixed_argv: list[str] = []
    for key, value in fixed.items():
        norm, action = _check_key(key, options, "fixed", label)
        if isinstance(value, list):
            raise SpecError(
                f"{label}: fixed.{key}: a list belongs in [axes]; a fixed option has one value"
            )
        if norm in seen:
            raise SpecError(f"{label}: fixed.{key}: also given as {seen[norm]}; keep one of them")
        seen[norm] = f"fixed.{key}"
        fixed_argv += _to_argv(norm, value, action, f"{label}: fixed.{key}")
    axis_actions = {}
    for key, values in axes.items():
        norm, action = _check_key(key, options, "axes", label)
        if norm in seen:
            raise SpecError(f"{label}: axes.{key}: also given as {seen[norm]}; keep one of them")
        seen[norm] = f"axes.{key}"
        if not isinstance(values, list):
            raise SpecError(
                f"{label}: axes.{key}: an axis is a list of values, e.g. {key} = [{values!r}]"
            )
        if not values:
            raise SpecError(f"{label}: axes.{key}: empty axis; give at least one value")
        flags = [tuple(_to_argv(norm, v, action, f"{label}: axes.{key}")) for v in values]
        if len(set(flags)) != len(flags):
            raise SpecError(f"{label}: axes.{key}: a value is listed twice in {values!r}")
        axis_actions[key] = (norm, action)

    # Each axis value first, in a real cell of the grid (the other axes at their first value),
    # so an error names its key and value; then every cell after the cap check (a combination
    # may still be refused, e.g. beta-start > beta-end).
    targets_cache: dict[str, None] = {}
    first = {k: vs[0] for k, vs in axes.items()}
    if not axes:
        _validate_cell(parser, fixed_argv, f"{label}: [fixed]", targets_cache)
    for key, values in axes.items():
        for v in values:
            argv = list(fixed_argv)
            for k, value in (first | {key: v}).items():
                norm, action = axis_actions[k]
                argv += _to_argv(norm, value, action, f"{label}: axes.{k}")
            _validate_cell(parser, argv, f"{label}: axes.{key} = {v!r}", targets_cache)

    count = math.prod(len(v) for v in axes.values())
    if count > max_cells and not yes:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
        raise SpecError(
            f"{label}: [axes] make {count} cells ({sizes}), over the cap of {max_cells}; "
            "add --yes to run them all, or raise --max-cells"
        )

    spec = SweepSpec(path, text, fixed, axes, output)
    names: set[str] = set()
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo, strict=True))
        argv = list(fixed_argv)
        for key, v in values.items():
            norm, action = axis_actions[key]
            argv += _to_argv(norm, v, action, f"{label}: axes.{key}")
        where = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "the fixed options"
        config = _validate_cell(parser, argv, f"{label}: cell {where}", targets_cache)
        name = cell_name(values, argv)
        if name in names:  # two values with the same slug and hash: cannot happen, but be sure
            raise SpecError(f"{label}: two cells share the name {name}")
        names.add(name)
        spec.cells.append(Cell(name, values, argv, config))
    return spec


def _validate_cell(
    parser: argparse.ArgumentParser, argv: list[str], where: str, cache: dict[str, None]
) -> RunConfig:
    """The cell's RunConfig exactly as `toylab run` would build it; its targets are built once
    per distinct (targets, bins, target options) so a missing image or bad text fails here."""
    import densities
    from toylab.cli.run_cmd import config_from_args
    from toylab.run import build_targets

    try:
        args = parser.parse_args(argv)
        config = config_from_args(args)
        if "path" in config.target_options:  # workers may run elsewhere: no relative paths
            config.target_options["path"] = str(Path(config.target_options["path"]).resolve())
        key = json.dumps([config.targets, config.bins, config.target_options], sort_keys=True)
        if key not in cache:
            build_targets(config)
            cache[key] = None
    except (ToylabError, densities.DensityError) as err:
        raise SpecError(f"{where}: {err}") from None
    config.threads = 1
    return config


def load_spec(path: str | Path, max_cells: int = DEFAULT_MAX_CELLS, yes: bool = False) -> SweepSpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the spec: {err}") from None
    return parse_spec(text, path, max_cells, yes)
