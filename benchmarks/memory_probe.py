"""A server extension for the benchmark only: what the server process holds in memory.

`GET api/benchprobe` counts the objects of the classes that make up a room, before and
after a full garbage collection, and measures the process RSS before the collection,
after it, and after asking the C allocator to give free memory back to the system
(glibc `malloc_trim`). A room still counted after the collection is a leak; one counted
only before it was waiting for the cycle collector; RSS that drops after trimming was
free memory the allocator kept.

bench_rooms.py loads it, next to jupyter_crdt_sync, into the server of its memory section
only; it is not part of the product.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
from collections import Counter
from typing import Any

import psutil
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

COUNTED = (
    "Room",
    "Peer",
    "FileWriter",
    "YNotebook",
    "ClosedRoom",
    "RoomWebSocketHandler",
    "Task",
    "Future",
)


def _malloc_trim() -> bool:
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _count() -> dict[str, int]:
    counts = Counter(type(obj).__name__ for obj in gc.get_objects())
    return {name: counts.get(name, 0) for name in COUNTED}


class ProbeHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        process = psutil.Process()
        rss = process.memory_info().rss
        # Objects in reference cycles stay in memory until the collector finds them.
        before = _count()
        collected = gc.collect()
        after = _count()
        rss_collected = process.memory_info().rss
        trimmed = _malloc_trim()
        body = {
            "objects_before_collect": before,
            "objects": after,
            "collected": collected,
            "rss": rss,
            "rss_after_collect": rss_collected,
            "rss_after_trim": process.memory_info().rss,
            "trimmed": trimmed,
        }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "benchmarks.memory_probe"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    route = url_path_join(serverapp.web_app.settings["base_url"], "api/benchprobe")
    serverapp.web_app.add_handlers(".*$", [(route, ProbeHandler)])
