"""`toylab densities`: list the targets with their parameters, or draw a contact sheet."""

from __future__ import annotations

import argparse

import densities


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "densities",
        help="list the targets or write a contact sheet of them",
        description="List the procedural targets with their parameters, or write a PNG contact sheet.",
    )
    p.add_argument("--list", action="store_true", help="print every target with its parameters")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    for name in densities.names():
        spec = densities.target(name)
        print(f"{name:14s} {spec.summary}")
        for key, default in spec.defaults().items():
            print(f"    {key}={default!r}: {spec.params.get(key, '')}")
    return 0
