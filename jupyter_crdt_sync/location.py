"""Where an open notebook is: its path, held once for all the parts of its room.

The room, its file writer, its file watcher and its kernel actor all read the path from
one `Location`; a rename changes it there and every part follows at once.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass


@dataclass
class Location:
    path: str


def moved_path(path: str, old_path: str, new_path: str) -> str | None:
    """Where `path` is after `old_path` (a file, or a folder) was renamed to `new_path`;
    None if the rename does not concern it."""
    if path == old_path:
        return new_path
    old_prefix = old_path.rstrip("/") + "/"
    if path.startswith(old_prefix):
        return posixpath.join(new_path, path[len(old_prefix) :])
    return None
