"""Options shared by several subcommands: the target options that map to densities.get."""

from __future__ import annotations

import argparse
from typing import Any

# CLI flag destination -> keyword of densities.get, for the targets that take it.
TARGET_OPTION_KEYWORDS = {
    "qr_data": "data",
    "text": "text",
    "image": "path",
    "invert": "invert",
    "spiral_turns": "turns",
    "spiral_width": "width",
}


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """Add --bins and the per-target options; each applies to the targets that take it."""
    group = parser.add_argument_group("target options (each applies to the targets that take it)")
    group.add_argument(
        "--bins", type=int, default=None, help="grid size per side, 8..4096 (default 100)"
    )
    group.add_argument("--qr-data", metavar="TEXT", help="payload of the qr target")
    group.add_argument("--text", help="text of the words target (use \\n for new lines)")
    group.add_argument("--image", metavar="PATH", help="PNG/JPEG/.npy file for the image target")
    group.add_argument(
        "--invert", action="store_true", default=None, help="image target: dark is mass"
    )
    group.add_argument(
        "--spiral-turns", type=float, metavar="T", help="spiral target: turns of each arm"
    )
    group.add_argument(
        "--spiral-width", type=float, metavar="W", help="spiral target: arm width at the centre"
    )


def target_options(args: argparse.Namespace) -> dict[str, Any]:
    """The target keywords given on the command line (unset options are left out)."""
    out: dict[str, Any] = {}
    for dest, keyword in TARGET_OPTION_KEYWORDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            if dest == "text":
                value = value.replace("\\n", "\n")
            out[keyword] = value
    return out
