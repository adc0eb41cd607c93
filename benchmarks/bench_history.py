"""What history costs (issue 11): storage for a day of editing, and the time to list, read
and restore a version.

    python benchmarks/bench_history.py [--hours 8] [--quick]

1. Storage. A ~1 MB notebook (code cells with text outputs, some with PNG images, markdown)
   is edited for a simulated working day: typing bursts of keystroke-sized edits into a
   few cells, pauses, cells re-run (new text outputs; plots sometimes redrawn, sometimes
   the same). Every edit is one CRDT transaction of the same pycrdt document. The same
   updates go, in the same run, to
   - our store (store.py): the room's journal (updates, compacted) and a version at each
     write-back, as the FileWriter makes them (after 1 s of quiet, at most every 5 s), the
     history thinned every 10 simulated minutes by the default retention policy;
   - jupyter-collaboration's store: pycrdt-store's SQLiteYStore (what jupyter-server-ydoc
     uses), one write per update, with its defaults (no squashing: jupyter-collaboration
     sets none by default).
   Bytes are the SQLite pages in use (page_count - freelist_count) * page_size, plus the
   data bytes of the history alone.
2. Speed. A 1000-cell notebook on a real server (127.0.0.1) with 20 versions: the time to
   list the versions, read one, compare one with now, and restore one (whole and one cell),
   through the REST API, median of repeated calls; a restore is timed on a quiet room.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import table
from jupyter_crdt_sync.cells import find_cell, youtput
from jupyter_crdt_sync.client import RoomClient
from jupyter_crdt_sync.history_store import VersionRequest
from jupyter_crdt_sync.notebook_file import file_view
from jupyter_crdt_sync.store import Store
from jupyter_crdt_sync.versions import RetentionPolicy
from tests.server_process import ServerProcess

SAVE_DELAY, SAVE_MAX_DELAY = 1.0, 5.0  # the FileWriter's defaults
THIN_EVERY = 600.0  # history_thin_interval's default


def image(rng: random.Random, size: int) -> str:
    """Base64 of incompressible bytes, as a PNG plot is."""
    return base64.b64encode(rng.randbytes(size)).decode()


def day_notebook(rng: random.Random) -> dict[str, Any]:
    """About 1 MB: 200 code cells with text outputs (32 with a ~30 KB plot), 80 markdown."""
    cells = []
    for index in range(280):
        if index % 7 in (1, 4):
            text = " ".join(rng.choice(WORDS) for _ in range(50))
            cells.append(nbformat.v4.new_markdown_cell(f"## Part {index}\n\n{text}"))
            continue
        source = "\n".join(
            f"value_{index}_{line} = compute({rng.randint(0, 999)}, '{rng.choice(WORDS)}')"
            for line in range(6)
        )
        outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{index}: ok\n" * 12)]
        if index % 9 == 0:
            outputs.append(
                nbformat.v4.new_output(
                    "display_data", data={"image/png": image(rng, 30_000), "text/plain": "<Fig>"}
                )
            )
        cells.append(nbformat.v4.new_code_cell(source, outputs=outputs, execution_count=index + 1))
    notebook = nbformat.v4.new_notebook(cells=cells)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:04d}"
    return json.loads(json.dumps(notebook))


WORDS = ["data", "frame", "model", "plot", "mean", "value", "sample", "error", "fit"]


class Theirs:
    """pycrdt-store's SQLiteYStore, as jupyter-server-ydoc uses it."""

    def __init__(self, db_path: str) -> None:
        from pycrdt.store import SQLiteYStore

        class Store_(SQLiteYStore):
            pass

        Store_.db_path = db_path
        self.db_path = db_path
        self.store = Store_(path="json:notebook:3f0c7a8e-2d8b-4a53-9a49-6c6f4f1d2e11")

    async def __aenter__(self) -> Theirs:
        await self.store.__aenter__()
        assert self.store.db_initialized is not None
        await self.store.db_initialized.wait()
        # Only for the benchmark's speed: no fsync. Sizes do not depend on it.
        cursor = await self.store._db.cursor()
        await cursor.execute("PRAGMA synchronous = OFF")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.__aexit__(None, None, None)


def used_bytes(db_path: str) -> int:
    with sqlite3.connect(db_path) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


async def edit_all_day(hours: float, workdir: Path) -> dict[str, Any]:
    rng = random.Random(11)
    content = day_notebook(rng)
    doc = Doc()
    notebook = YNotebook(doc)
    notebook.undo_manager.include_origin("none")
    notebook.set(content)
    initial_json = len(json.dumps(content))

    ours = Store(str(workdir / "ours.sqlite"), logging.getLogger("bench"))
    ours.open()
    # The same versions, never thinned: what one version costs.
    unthinned = Store(str(workdir / "unthinned.sqlite"), logging.getLogger("bench"))
    unthinned.open()
    path = "day.ipynb"
    cell_ids = [cell["id"] for cell in content["cells"]]
    await ours.create(path, doc.client_id, doc.get_update(), content, cell_ids)
    journal = ours.journal(path, doc.get_update)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    policy = RetentionPolicy()
    versions = 0
    stats = {"keystrokes": 0, "executions": 0, "write_backs": 0}

    async with Theirs(str(workdir / "theirs.sqlite")) as theirs:
        await theirs.store.write(doc.get_update())

        async def flush() -> None:
            # Every update goes to both stores, in order.
            batch, updates[:] = list(updates), []
            for update in batch:
                journal.append(update)
                await theirs.store.write(update)
            await asyncio.sleep(0)

        # The notebook as the writer would read it, kept by hand for the cells edited:
        # jupyter-ydoc's get() of the whole notebook at each write-back would make the
        # simulation take longer than the day it simulates.
        mirror = file_view(notebook.get())
        position = {cell["id"]: index for index, cell in enumerate(mirror["cells"])}

        def mirror_cell(cell_id: str, **fields: Any) -> None:
            index = position[cell_id]
            mirror["cells"][index] = {**mirror["cells"][index], **fields}

        async def write_back(now: float) -> None:
            nonlocal versions
            await flush()
            content_now = {**mirror, "cells": list(mirror["cells"])}
            ids = [cell["id"] for cell in content_now["cells"]]
            request = VersionRequest(content_now, ids, ["alice"], time=now)
            number = await ours.record_file(path, content_now, ids, request)
            if number is not None and number > versions:
                versions = number
            await unthinned.record_version(path, request)
            stats["write_backs"] += 1

        # The room records the notebook as it was opened, then one version per write-back.
        opened = VersionRequest({**mirror, "cells": list(mirror["cells"])}, cell_ids, [], time=0)
        await ours.record_version(path, opened)
        await unthinned.record_version(path, opened)
        first_bytes = await unthinned.history_bytes()
        active = [cell_id for cell_id in cell_ids if rng.random() < 0.05]
        now, end = 0.0, hours * 3600.0
        dirty_since: float | None = None
        last_change = 0.0
        next_thin = THIN_EVERY
        while now < end:
            cell_id = rng.choice(active)
            found = find_cell(notebook, cell_id)
            assert found is not None
            _, ycell = found
            text: Text = ycell["source"]
            for _ in range(rng.randint(10, 150)):
                if rng.random() < 0.12 and len(text) > 1:
                    del text[len(text) - 1 : len(text)]
                else:
                    text.insert(len(text), rng.choice("abcdefghij (),.=_\n"))
                stats["keystrokes"] += 1
                mirror_cell(cell_id, source=str(text))
                now += rng.uniform(0.1, 0.6)
                dirty_since = now if dirty_since is None else dirty_since
                last_change = now
                if now - dirty_since >= SAVE_MAX_DELAY:
                    await write_back(now)
                    dirty_since = None
            await flush()
            if ycell.get("cell_type") == "code" and rng.random() < 0.5:
                stats["executions"] += 1
                outputs: Array = ycell["outputs"]
                had_image = any("data" in dict(output) for output in outputs)
                new = [{"output_type": "stream", "name": "stdout", "text": f"run {now:.0f}\n"}]
                if had_image:
                    # A plot redrawn with new data, or the same plot again.
                    png = image(rng, 30_000) if rng.random() < 0.4 else None
                    old = next(dict(o) for o in outputs if "data" in dict(o))
                    data = {"image/png": png} if png else dict(old["data"])
                    new.append({"output_type": "display_data", "data": data, "metadata": {}})
                with doc.transaction():
                    del outputs[:]
                    for output in new:
                        outputs.append(youtput(output))
                    ycell["execution_count"] = stats["executions"]
                mirror_cell(cell_id, outputs=new, execution_count=stats["executions"])
                now += rng.uniform(1, 10)
                last_change = now
                dirty_since = now if dirty_since is None else dirty_since
            # A pause: the writer writes after a second of quiet.
            pause = rng.choice([2, 5, 20, 60, 300])
            if dirty_since is not None and pause >= SAVE_DELAY:
                await write_back(last_change + SAVE_DELAY)
                dirty_since = None
            now += pause
            if now >= next_thin:
                await ours.thin_history(policy, 30 * 86400.0, now=now)
                next_thin = now + THIN_EVERY
            await flush()
        await ours.thin_history(policy, 30 * 86400.0, now=now)
        # The hand-kept notebook was the document's all along.
        assert mirror == file_view(notebook.get()), "the simulation's notebook drifted"
        history_bytes = await ours.history_bytes()
        unthinned_bytes = await unthinned.history_bytes()
        kept = len(await ours.history(path) or [])
    doc.unobserve(subscription)
    journal.close()
    await ours.close()
    await unthinned.close()
    with sqlite3.connect(workdir / "theirs.sqlite") as connection:
        their_rows, their_data = connection.execute(
            "SELECT count(*), sum(length(yupdate) + length(metadata) + length(path) + 8) "
            "FROM yupdates"
        ).fetchone()
    return {
        **stats,
        "hours": hours,
        "notebook_bytes": initial_json,
        "versions_recorded": versions,
        "versions_kept": kept,
        "history_bytes": history_bytes,
        "unthinned_bytes": unthinned_bytes,
        "first_version_bytes": first_bytes,
        "ours_bytes": used_bytes(str(workdir / "ours.sqlite")),
        "theirs_rows": their_rows,
        "theirs_data": their_data,
        "theirs_bytes": used_bytes(str(workdir / "theirs.sqlite")),
    }


# -- speed on a real server -------------------------------------------------------------------


def big_notebook(path: Path, cells: int) -> None:
    notebook = nbformat.v4.new_notebook()
    for index in range(cells):
        cell = nbformat.v4.new_code_cell(f"x_{index} = {index} * 2\nprint(x_{index})")
        cell["id"] = f"c{index}"
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=f"{index * 2}\n")]
        notebook.cells.append(cell)
    nbformat.write(notebook, str(path))


def quiet(server: ServerProcess, path: str) -> None:
    """Wait until the room has written everything to the file and is idle: a restore is
    timed on a quiet room, not queued behind a write-back (which, for 1000 cells, keeps
    the server busy for seconds)."""
    deadline = time.monotonic() + 60
    previous = None
    while time.monotonic() < deadline:
        rooms = server.get_json("api/crdtsync/status")["rooms"]
        room = next((room for room in rooms if room["path"] == path), None)
        state = None if room is None else (room["dirty"], room["last_saved"])
        if state is not None and not state[0] and state == previous:
            return
        previous = state
        time.sleep(0.7)


def timed(
    server: ServerProcess, endpoint: str, body: Any = None, repeat: int = 15
) -> tuple[float, float]:
    """Median and best of `repeat` calls, in ms (the best: the cost on an idle machine)."""
    times = []
    for _ in range(repeat):
        if body is not None:
            quiet(server, "big.ipynb")
        request = urllib.request.Request(
            server.url + endpoint,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {server.token}"},
        )
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, min(times) * 1000


def speed(workdir: Path, cells: int, versions: int) -> list[tuple[str, tuple[float, float]]]:
    root = workdir / "root"
    root.mkdir()
    big_notebook(root / "big.ipynb", cells)
    # The default write-back delays: a restore answers before the write-back that follows.
    config = {"CRDTSync": {"save_delay": SAVE_DELAY, "save_max_delay": SAVE_MAX_DELAY}}
    with ServerProcess(root, config=config) as server:

        async def make_versions() -> None:
            client = RoomClient(server.url, "big.ipynb", token=server.token)
            await client.connect()
            for step in range(versions - 1):
                client.set_source(f"c{(step * 37) % cells}", f"edited = {step}")
                while len(await client.history()) < step + 2:
                    await asyncio.sleep(0.05)
            await client.disconnect()

        asyncio.run(make_versions())
        middle = versions // 2
        base = "api/crdtsync/"
        results = [
            ("list the versions", timed(server, base + "history/big.ipynb")),
            ("read one version", timed(server, base + f"history/big.ipynb/{middle}")),
            ("compare one with now", timed(server, base + f"history/big.ipynb/{middle}?diff=now")),
            (
                "restore one cell",
                timed(server, base + "restore/big.ipynb", {"version": 1, "cell_ids": ["c0"]}, 7),
            ),
            (
                "restore the whole notebook",
                timed(server, base + "restore/big.ipynb", {"version": middle}, 7),
            ),
        ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0, help="simulated hours of editing")
    parser.add_argument("--quick", action="store_true", help="one simulated hour, 200 cells")
    parser.add_argument("--skip-speed", action="store_true", help="only the storage part")
    parser.add_argument("--skip-storage", action="store_true", help="only the speed part")
    args = parser.parse_args()
    hours = 1.0 if args.quick else args.hours
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"bench_history at {commit}, {hours:g} simulated hours\n")
    if not args.skip_storage:
        storage(hours)
    if args.skip_speed:
        return
    cells = 200 if args.quick else 1000
    with tempfile.TemporaryDirectory() as workdir:
        results = speed(Path(workdir), cells, versions=10 if args.quick else 20)
    load = os.getloadavg()[0]
    print(f"\n{cells}-cell notebook, REST API on 127.0.0.1 (load average {load:.1f}):\n")
    rows = [(name, f"{median:.1f}", f"{best:.1f}") for name, (median, best) in results]
    print(table(("operation", "median ms", "best ms"), rows, 1))


def storage(hours: float) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        day = asyncio.run(edit_all_day(hours, Path(workdir)))
        elapsed = time.perf_counter() - started
    mib = 1024 * 1024
    print(
        f"Edits: {day['keystrokes']} keystrokes, {day['executions']} re-runs, "
        f"{day['write_backs']} write-backs -> {day['versions_recorded']} versions recorded, "
        f"{day['versions_kept']} kept after thinning; notebook {day['notebook_bytes'] / mib:.2f} "
        f"MiB; simulated in {elapsed:.0f} s\n"
    )
    ours, theirs = day["ours_bytes"], day["theirs_bytes"]
    write_backs = max(day["write_backs"], 1)
    rows = [
        (
            "jupyter-collaboration: pycrdt-store SQLiteYStore",
            f"{day['theirs_rows']} updates",
            f"{theirs / mib:.2f}",
            f"{theirs / day['notebook_bytes']:.2f}",
            "1.000",
        ),
        (
            "ours: versions, thinned (history tables' data)",
            f"{day['versions_kept']} versions",
            f"{day['history_bytes'] / mib:.2f}",
            f"{day['history_bytes'] / day['notebook_bytes']:.2f}",
            f"{day['history_bytes'] / theirs:.3f}",
        ),
        (
            "ours: versions, never thinned",
            f"{day['versions_recorded']} versions",
            f"{day['unthinned_bytes'] / mib:.2f}",
            f"{day['unthinned_bytes'] / day['notebook_bytes']:.2f}",
            f"{day['unthinned_bytes'] / theirs:.3f}",
        ),
        (
            "ours: whole store file (CRDT journal + thinned versions)",
            "",
            f"{ours / mib:.2f}",
            f"{ours / day['notebook_bytes']:.2f}",
            f"{ours / theirs:.3f}",
        ),
    ]
    headers = ("store after the day", "holds", "MiB", "x notebook", "vs theirs")
    print(table(headers, rows, text_columns=2))
    first = day["first_version_bytes"]
    per_version = (day["unthinned_bytes"] - first) / max(day["versions_recorded"] - 1, 1)
    their_growth = (theirs - day["notebook_bytes"]) / write_backs
    print(
        f"\nPer write-back: ours {per_version:.0f} bytes per version after the first "
        f"(the notebook as opened: {first / 1024:.0f} KiB); theirs grows "
        f"{their_growth:.0f} bytes per write-back interval."
    )


if __name__ == "__main__":
    main()
