"""Saving by rename: a reader of a notebook sees the whole old file or the whole new one.

jupyter_server's file contents manager "atomic" save truncates the file and rewrites it
in place (keeping a backup copy), so a program reading the notebook during a save can see
it empty or half written. Writing a temporary file in the same directory, syncing it and
renaming it over the original never exposes a partial file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import types
from collections.abc import Iterator
from typing import IO, Any

from jupyter_server.services.contents.manager import ContentsManager


@contextlib.contextmanager
def replace_writing(
    path: str, text: bool = True, encoding: str = "utf-8", **kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success, fsync it and rename it over `path`."""
    if os.path.islink(path):
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    directory = os.path.dirname(path) or os.getcwd()
    fd, tmp_path = tempfile.mkstemp(
        dir=directory, prefix=f".~{os.path.basename(path)}.", suffix=".tmp"
    )
    try:
        if text:
            kwargs.setdefault("newline", "\n")
            fileobj = open(fd, "w", encoding=encoding, **kwargs)  # noqa: SIM115
        else:
            fileobj = open(fd, "wb", **kwargs)  # noqa: SIM115
        with fileobj:
            yield fileobj
            fileobj.flush()
            os.fsync(fileobj.fileno())
        if os.path.exists(path):
            shutil.copymode(path, tmp_path)
        else:
            os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    _fsync_directory(directory)


def _current_umask() -> int:
    # os.umask can only be read by setting it, which races with other threads.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every filesystem allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def install_replace_writing(contents_manager: ContentsManager) -> bool:
    """Make a file-based contents manager save by rename; False if it is not file based."""
    original = getattr(contents_manager, "atomic_writing", None)
    if original is None or not getattr(contents_manager, "use_atomic_writing", False):
        return False

    @contextlib.contextmanager
    def atomic_writing(self: Any, os_path: str, *args: Any, **kwargs: Any) -> Iterator[IO[Any]]:
        directory = os.path.dirname(os_path) or os.getcwd()
        if os.path.isfile(os_path) and not os.access(directory, os.W_OK):
            # A writable file in a read-only directory cannot be replaced, only rewritten.
            with original(os_path, *args, **kwargs) as fileobj:
                yield fileobj
            return
        kwargs.pop("log", None)
        with self.perm_to_403(os_path), replace_writing(os_path, *args, **kwargs) as fileobj:
            yield fileobj

    contents_manager.atomic_writing = types.MethodType(atomic_writing, contents_manager)  # type: ignore[method-assign]
    return True
