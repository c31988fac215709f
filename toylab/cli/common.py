"""Options shared by several subcommands: the target options that map to densities.get."""

from __future__ import annotations

import argparse
from typing import Any

from toylab import params


def add_target_options(parser: argparse.ArgumentParser, bins_default: int | None = None) -> None:
    """Add --bins and the per-target options; each applies to the targets that take it."""
    group = parser.add_argument_group("target options (each applies to the targets that take it)")
    names = [p.name for p in params.PARAMS if p.group == "target"]
    params.add_options(group, names, {"bins": bins_default} if bins_default else None)


def target_options(args: argparse.Namespace) -> dict[str, Any]:
    """The target keywords given on the command line (unset options are left out)."""
    given = params.given(args, [p.name for p in params.TARGET_PARAMS])
    return {params.BY_NAME[name].keyword: value for name, value in given.items()}
