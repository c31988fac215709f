"""The `toylab` command: argparse subcommands, each in its own module of this package.

Every subcommand module exposes `add_parser(subparsers)`, which registers the command and sets
`func` to a `main(args) -> int`. Errors a user can fix (ToylabError, DensityError) are printed
as one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys

from densities import DensityError
from toylab.cli import (
    densities_cmd,
    explain_cmd,
    figure_cmd,
    gif_cmd,
    run_cmd,
    sample_cmd,
    sweep_cmd,
)
from toylab.errors import ToylabError

COMMANDS = [run_cmd, gif_cmd, figure_cmd, densities_cmd, sample_cmd, explain_cmd, sweep_cmd]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full `toylab` parser with every subcommand registered."""
    parser = OneLineParser(
        prog="toylab",
        description="A 2D density-estimation lab for Discrete Distribution Networks (DDN).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `toylab` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ToylabError, DensityError) as err:
        print(f"toylab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"toylab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
