"""A large notebook's write-back does not hold the event loop: every room of the server
shares it, so a stall there is a stalled keystroke everywhere.

A real server (in this process, on this event loop), a 10 MB notebook (1000 cells, 10 kB
of image output each), one peer typing a key every 20 ms while the room writes the file
back every half second, the first write with nothing prepared yet. A ticker task on the
same loop measures how late it wakes up: the worst lateness is the longest time the loop
was held. Before these changes a write-back held it for ~350 ms (docs/performance.md).

The bound is generous (50 ms, against 1-2 ms of a quiet loop) because the machine is
shared. The ticker also measures the CPU time the loop's thread spent in each stall: that
is work on the loop, which must stay under the bound however loaded the machine. The wall
clock must too, unless the machine is overloaded (load average over its cores: then every
process waits for a core, tens of ms at a time). A run over either bound is repeated once,
on a fresh copy of the notebook (so with its first, unprepared write again). Before these
changes both measures were ~350 ms.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_crdt_sync.cells import cell_source

from .conftest import FAST_TIMINGS

MAX_STALL = 0.050
CELLS = 1000
OUTPUT_BYTES = 7500  # 10,000 characters of base64 per cell
TYPING_SECONDS = 3.0
SAVES = 3


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "save_delay": 0.05, "save_max_delay": 0.5, "eviction_delay": 60}


@pytest.fixture(scope="module")
def big_notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cells = []
    for index in range(CELLS):
        cell = nbformat.v4.new_code_cell(f"x = {index}\nprint(x)\n", execution_count=index + 1)
        cell["id"] = f"cell-{index}"
        image = base64.b64encode(os.urandom(OUTPUT_BYTES)).decode("ascii")
        data = {"image/png": image, "text/plain": "<Figure size 640x480 with 1 Axes>"}
        cell["outputs"] = [nbformat.v4.new_output("display_data", data=data)]
        cells.append(cell)
    path = tmp_path_factory.mktemp("big") / "big.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))
    assert path.stat().st_size > 10_000_000
    return path


class Ticker:
    """Wakes up every millisecond and records how late it is (wall clock), and how much
    CPU time the loop's thread used meanwhile: the part of the stall that was work on the
    loop, as opposed to waiting for a core of an overloaded machine."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_cpu = 0.0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            before, before_cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - before - 0.001)
            self.worst_cpu = max(self.worst_cpu, time.thread_time() - before_cpu)

    def reset(self) -> None:
        self.worst = self.worst_cpu = 0.0

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def typing_during_write_backs(
    root: Path, name: str, connect: Any, room_manager: Any
) -> tuple[float, float, float]:
    """The worst loop stall while the room is quiet, and while a peer types and the room
    writes 10 MB back again and again (the first write with nothing prepared); and of the
    latter, the most CPU time the loop's thread spent in one stall."""
    peer = await connect(name)
    ticker = Ticker()
    try:
        await asyncio.sleep(0.5)
        quiet = ticker.worst
        writer = room_manager.writer(name)
        saves = writer.saves
        ticker.reset()
        typed = ""
        started = time.perf_counter()
        while time.perf_counter() - started < TYPING_SECONDS or writer.saves < saves + SAVES:
            assert time.perf_counter() - started < 60, "the room stopped writing the file"
            peer.insert_text("cell-5", len(peer.source("cell-5")), "k")
            typed += "k"
            await asyncio.sleep(0.02)
        busy, busy_cpu = ticker.worst, ticker.worst_cpu
    finally:
        await ticker.stop()
    # Nothing lost: every keystroke is in the file.
    await room_manager.save_now(name, peer.doc.get_state())
    content = json.loads((root / name).read_text())
    assert cell_source(content["cells"][5]) == f"x = 5\nprint(x)\n{typed}"
    await peer.disconnect()
    return quiet, busy, busy_cpu


async def test_writing_back_a_10mb_notebook_never_holds_the_loop_for_long(
    big_notebook, jp_root_dir, connect, room_manager
):
    # The collector's full passes over this test process's heap (pytest, the server, every
    # module: hundreds of thousands of objects) take 100-400 ms here, whatever the writer
    # does; frozen, they leave out what existed before the test.
    gc.collect()
    gc.freeze()
    runs = []
    try:
        for attempt in (1, 2):
            name = f"big{attempt}.ipynb"
            shutil.copy(big_notebook, jp_root_dir / name)
            quiet, busy, cpu = await typing_during_write_backs(
                jp_root_dir, name, connect, room_manager
            )
            overloaded = os.getloadavg()[0] > (os.cpu_count() or 1)
            runs.append(
                f"{busy * 1000:.0f} ms, {cpu * 1000:.0f} ms of it on the loop's CPU "
                f"(quiet loop: {quiet * 1000:.1f} ms; load average {os.getloadavg()[0]:.1f})"
            )
            if cpu <= MAX_STALL and (busy <= MAX_STALL or overloaded):
                break
    finally:
        gc.unfreeze()
    held = ", then ".join(runs)
    # Work done on the loop: never more than the bound, however loaded the machine.
    assert cpu <= MAX_STALL, f"the event loop was held during write-back for {held}"
    # The wall clock, too, when the machine has a core for us (more runnable threads than
    # cores leave any process waiting for one, for tens of ms at a time).
    assert busy <= MAX_STALL or overloaded, f"the event loop was held during write-back for {held}"
