"""Progress bars on stderr that behave in a terminal and in a log.

In a terminal a tqdm bar redraws itself in place. Outside one (a CI log, `| tee`) each redraw
would be a carriage return piling up on one endless line, so there the bar prints one plain
line every LOG_INTERVAL_S seconds instead (and a last one when it closes).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

LOG_INTERVAL_S = 5.0
"""Outside a terminal, the progress is one line every this many seconds (the environment
variable TOYLAB_PROGRESS_SECONDS overrides it, e.g. 60 for a quieter CI log)."""


def log_interval() -> float:
    """Seconds between progress lines outside a terminal: TOYLAB_PROGRESS_SECONDS or 5."""
    try:
        value = float(os.environ.get("TOYLAB_PROGRESS_SECONDS", LOG_INTERVAL_S))
    except ValueError:
        return LOG_INTERVAL_S
    return value if value > 0 else LOG_INTERVAL_S


LOG_FORMAT = (
    "{desc}{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)
"""A log line: no bar graphic (nothing to redraw), never cut to a terminal's width."""


class LineWriter:
    """A file wrapper for tqdm outside a terminal: each refresh becomes one plain line.

    The carriage return tqdm puts before every redraw is dropped, blank redraws (clearing the
    bar) are skipped, and each drawn bar ends with a newline.
    """

    def __init__(self, file: Any):
        self.file = file

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.file.write(line + "\n")

    def flush(self) -> None:
        self.file.flush()


def is_terminal(file: Any) -> bool:
    """Whether `file` is an interactive terminal (where a bar may redraw in place)."""
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


def bar(
    total: int,
    desc: str,
    quiet: bool = False,
    *,
    initial: int = 0,
    unit: str = "step",
    leave: bool = True,
    file: Any = None,
) -> tqdm:
    """A tqdm bar on `file` (default stderr): live in a terminal, else a line every few seconds."""
    from tqdm import tqdm  # imported here: help and argument errors never need it

    file = sys.stderr if file is None else file
    terminal = is_terminal(file)
    return tqdm(
        total=total,
        initial=initial,
        unit=unit,
        # "name: " as tqdm's set_description writes it, so a renamed bar reads the same
        desc=desc if not desc or desc.endswith(": ") else f"{desc}: ",
        file=file if terminal else LineWriter(file),
        disable=quiet,
        leave=leave or not terminal,  # in a log, the last line stays (it cannot be erased)
        dynamic_ncols=terminal,
        bar_format=None if terminal else LOG_FORMAT,
        mininterval=0.25 if terminal else log_interval(),
        maxinterval=max(10.0, log_interval()),
    )
