"""Durable, private files on a local disk: the primitives the key ring and the local store share."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and missing parents with mode 0700 and make their entries durable."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            new.mkdir(mode=0o700)
            os.chmod(new, 0o700)
            fsync_dir(new.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename or link into it) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
