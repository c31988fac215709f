"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader (or a Ctrl-C) never sees a half-written file: either the old one or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as err:
        if err.filename is None:  # a failed write() names no file: name the one being written
            err.filename = str(path)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_with(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call writer(tmp_path) and move the result to `path` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file atomically. Text that cannot be UTF-8 (a file name with bytes
    that are not, which Python carries as lone surrogates) is written as backslash escapes."""
    return write_with(
        path, lambda tmp: tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
    )


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write pretty JSON atomically."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a binary file atomically."""
    return write_with(path, lambda tmp: tmp.write_bytes(data))
