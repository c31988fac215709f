"""The `toylab` command: argparse subcommands, each in its own module of this package.

Every subcommand module exposes `add_parser(subparsers)`, which registers the command and sets
`func` to a `main(args) -> int`. Errors a user can fix (ToylabError, DensityError) are printed
as one line on stderr with exit status 2, never as a traceback.

Start-up is part of the interface: building the parser, printing any --help and rejecting any
argument must not import torch, numba, matplotlib or imageio (seconds between them). The
subcommand modules import those inside the functions that use them; tests/test_speed.py checks.
"""

from __future__ import annotations

import argparse
import gc
import sys

try:  # a Ctrl-C while importing is one line, exit 130
    import toylab
    from densities import DensityError
    from toylab.cli import (
        densities_cmd,
        explain_cmd,
        figure_cmd,
        gif_cmd,
        lab_cmd,
        run_cmd,
        sample_cmd,
        sweep_cmd,
        tree_cmd,
    )
    from toylab.errors import ToylabError
except KeyboardInterrupt:
    print("toylab: interrupted while starting", file=sys.stderr)
    raise SystemExit(130) from None

COMMANDS = [
    run_cmd,
    gif_cmd,
    figure_cmd,
    densities_cmd,
    sample_cmd,
    explain_cmd,
    lab_cmd,
    sweep_cmd,
    tree_cmd,
]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.prog == "toylab":  # no or unknown command: the usage and the list of commands
            self.print_help(sys.stderr)
            message = message.replace("argument COMMAND: invalid choice", "unknown command")
            message = message.replace("the following arguments are required: COMMAND", "no command")
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full `toylab` parser with every subcommand registered."""
    parser = OneLineParser(
        prog="toylab",
        description="A 2D density-estimation lab for Discrete Distribution Networks (DDN).",
        epilog="`toylab COMMAND --help` describes a command's options.",
    )
    parser.add_argument("--version", "-V", action="version", version=f"toylab {toylab.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def one_line(message: str) -> str:
    """An error message on one line, whatever its source wrote (a library's message may run
    over several, e.g. torch's state-dict errors quoted in a checkpoint refusal)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `toylab` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ToylabError, DensityError) as err:
        print(f"toylab {args.command}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"toylab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as err:  # read-only or full file system, permissions: one line, no traceback
        where = f" {err.filename}:" if err.filename is not None else ""
        print(f"toylab {args.command}: error:{where} {err.strerror or err}", file=sys.stderr)
        return 1


def console() -> int:
    """The `toylab` console script and `python -m toylab`: `main`, then a quick exit.

    Once a command has written everything, the interpreter's shutdown would still spend
    0.2-0.3 s collecting the garbage of numba's compiler (a tenth of the default run), memory
    the OS takes back anyway; gc.freeze() moves every live object out of the collector's
    reach first. Files are closed by then (every write is atomic and closed where it happens).
    Not done by `main`, which tests and scripts call in their own long-lived processes."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console())
