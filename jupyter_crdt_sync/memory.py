"""Giving the memory of evicted rooms back to the operating system.

A closed room is freed at once (no reference cycles: tests/test_rooms.py), but freed is
not returned: glibc's allocator keeps what Python and pycrdt (Rust, on the same malloc)
free in its arenas, to reuse, and gives back only what sits at the top of the heap. After
100 rooms of 100 cells were opened and evicted, the server's RSS stayed 50 MiB above its
baseline; `malloc_trim(0)` returned it (docs/performance.md, "Server RSS"). glibc does not
trim by itself on free for memory in the middle of its arenas, so the server asks for it,
once per burst of evictions (`ReleaseAfterEviction`): it takes a few milliseconds, on the
event loop, well after the rooms closed.

Elsewhere than glibc (musl, macOS) there is nothing to call, and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release_free_memory() -> bool:
    """Return the allocator's free memory to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class ReleaseAfterEviction:
    """Calls `release_free_memory` `delay` seconds after the last of a burst of evictions."""

    def __init__(self, delay: float = 1.0) -> None:
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self.releases = 0

    def room_closed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._delay, self._release)

    def _release(self) -> None:
        self._timer = None
        if release_free_memory():
            self.releases += 1

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
