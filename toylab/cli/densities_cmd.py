"""`toylab densities`: list the targets with their parameters, or draw a contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

import densities
from toylab.cli.common import add_target_options, target_options
from toylab.errors import ToylabError
from toylab.store.atomic import write_with

DEFAULT_BINS = 100  # grid of the contact sheet when --bins is not given


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "densities",
        help="list the targets or write a contact sheet of them",
        description=(
            "List the procedural targets with their parameters, or write a PNG contact sheet of"
            " every target (the image target only when --image is given)."
        ),
    )
    p.add_argument("--list", action="store_true", help="print every target with its parameters")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write a PNG contact sheet of every target to FILE (folders are created)",
    )
    add_target_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.list or args.out is None:
        print_targets()
    if args.out is not None:
        write_sheet(Path(args.out), args)
    return 0


def print_targets() -> None:
    """Every target's name and summary, then each parameter with its default and meaning."""
    for name in densities.names():
        spec = densities.target(name)
        print(f"{name:16s} {spec.summary}")
        for key, default in spec.defaults().items():
            print(f"    {key}={default!r}: {spec.params.get(key, '')}")


def write_sheet(out: Path, args: argparse.Namespace) -> None:
    """Build every target with the command line's options and write the sheet atomically."""
    if out.is_dir():
        raise ToylabError(f"--out {str(out)!r} is a directory; give a file name such as sheet.png")
    bins = DEFAULT_BINS if args.bins is None else args.bins
    options = target_options(args)
    names = [n for n in densities.names() if n != "image" or options.get("path") is not None]
    items = [densities.get(n, bins=bins, **densities.params_for(n, options)) for n in names]
    from densities.sheet import contact_sheet  # matplotlib colormaps: imported when drawing

    sheet = contact_sheet(items)  # everything is built before anything is written
    try:
        write_with(out, lambda tmp: sheet.save(tmp, format="PNG"))
    except OSError as err:
        raise ToylabError(f"cannot write --out {str(out)!r}: {err.strerror or err}") from None
    print(f"wrote {out}: {len(items)} targets at {bins} bins")
