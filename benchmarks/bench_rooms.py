#!/usr/bin/env python
"""Benchmarks of the room server: join time, keystroke latency, throughput and memory.

Starts a real `jupyter server` with the extension on 127.0.0.1 (tests/server_process.py),
drives it with `jupyter_crdt_sync.client.RoomClient` peers and prints markdown tables.

    python benchmarks/bench_rooms.py                  # everything, about 3 minutes
    python benchmarks/bench_rooms.py --quick          # smoke run, under a minute
    python benchmarks/bench_rooms.py --sections latency,throughput
    python benchmarks/bench_rooms.py --sections guard   # the content guard, in-process

Typing and watching peers run in worker processes (benchmarks/typing_peers.py). The
memory section loads benchmarks/memory_probe.py into the server as a second extension.
docs/performance.md says what each figure means and holds the last results.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
# The server subprocess (and the spawned peer workers) import from this checkout too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)

import nbformat  # noqa: E402
import psutil  # noqa: E402
from pycrdt import Doc  # noqa: E402

from benchmarks.report import table  # noqa: E402
from benchmarks.typing_peers import (  # noqa: E402
    PeerSpec,
    TypingRun,
    percentile,
    run_typing,
    split,
)
from jupyter_crdt_sync.client import RoomClient  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

SECTIONS = ("join", "latency", "throughput", "memory", "guard")
# Rooms close half a second after their last peer leaves, so that measurements do not
# overlap and the memory section does not wait; every other setting is the default.
SERVER_CONFIG: dict[str, dict[str, Any]] = {"CRDTSync": {"eviction_delay": 0.5}}
PROBE_EXTENSIONS = {"jupyter_crdt_sync": True, "benchmarks.memory_probe": True}
OUTPUT_BYTES = 7500  # random bytes per cell output: 10,000 characters of base64

# jupyter-collaboration 5.0.4 on a similar 2-core machine, for the comparison columns.
REFERENCE_JOIN_OPEN_1000_OUTPUTS_MS = "77"
REFERENCE_LATENCY_P99_MS = {10: "2.6", 50: "7.6"}
REFERENCE_THROUGHPUT_50 = "~385 (saturated); p99 2800"
REFERENCE_RSS_PER_ROOM = "~0.9 MB per 100-cell room, never released"


@dataclass(frozen=True)
class Options:
    quick: bool
    sections: tuple[str, ...]
    workers: int
    runs: int
    join_cells: tuple[int, ...]
    latency_peers: tuple[int, ...]
    latency_big_peers: int
    keystrokes: int
    interval: float
    throughput_runs: tuple[tuple[int, float], ...]  # (peers, seconds between keystrokes)
    throughput_seconds: float
    memory_rooms: int
    memory_cells: int
    server_config: dict[str, dict[str, Any]]


def log(message: str) -> None:
    """Progress, on stderr, so that stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- notebooks, tables, server helpers -----------------------------------------------------


def write_notebook(
    path: Path,
    cells: int,
    *,
    outputs: bool = False,
    seed: int = 0,
    output_bytes: int = OUTPUT_BYTES,
) -> Path:
    """A notebook of `cells` code cells with ids cell-0...; with outputs, one image of
    `output_bytes` random bytes per cell (~10 kB of base64 by default)."""
    rng = random.Random(seed)
    notebook_cells = []
    for index in range(cells):
        cell = nbformat.v4.new_code_cell(
            f"import numpy as np\nx = np.arange({index})\nprint(x.sum())\n",
            execution_count=index + 1,
        )
        cell["id"] = f"cell-{index}"
        if outputs:
            image = base64.b64encode(rng.randbytes(output_bytes)).decode("ascii")
            data = {"image/png": image, "text/plain": "<Figure size 640x480 with 1 Axes>"}
            cell["outputs"] = [nbformat.v4.new_output("display_data", data=data)]
        notebook_cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=notebook_cells)
    notebook["metadata"]["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def ms(seconds: float) -> str:
    if math.isnan(seconds):  # no samples
        return "n/a"
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f}"


def section_config(options: Options, root: Path) -> dict[str, dict[str, Any]]:
    """The server settings for one section: the room store is a file of its own."""
    config = {section: dict(values) for section, values in options.server_config.items()}
    store = str(root.parent / f"{root.name}-store.sqlite")
    config.setdefault("CRDTSync", {}).setdefault("store_path", store)
    return config


def wait_rooms_closed(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while server.get_json("api/crdtsync/status")["rooms"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"rooms still open after {timeout} s")
        time.sleep(0.1)


async def join_once(server: ServerProcess, path: str) -> tuple[float, RoomClient]:
    """Connect a peer and wait until it is in sync; the seconds that took."""
    client = RoomClient(server.url, path, token=server.token)
    started = time.perf_counter()
    await client.connect(timeout=120)
    return time.perf_counter() - started, client


def check_run(run: TypingRun, label: str, problems: list[str]) -> None:
    """Edits that never arrived, or arrived out of order, make the run fail."""
    if run.missing:
        problems.append(f"{label}: {run.missing} deliveries missing when the run timed out")
    if run.out_of_order:
        problems.append(f"{label}: {run.out_of_order} keystrokes arrived out of order")


# -- 1. join -------------------------------------------------------------------------------


async def _join_times(server: ServerProcess, paths: list[str]) -> tuple[list[float], list[float]]:
    """First joins, one fresh copy of the notebook each; then joins of a room held open."""
    first = []
    for path in paths:
        _collect_client_garbage()
        elapsed, client = await join_once(server, path)
        await client.disconnect()
        first.append(elapsed)
    await asyncio.to_thread(wait_rooms_closed, server)
    _, holder = await join_once(server, paths[0])
    opened = []
    for _ in paths:
        _collect_client_garbage()
        elapsed, client = await join_once(server, paths[0])
        await client.disconnect()
        opened.append(elapsed)
    await holder.disconnect()
    await asyncio.to_thread(wait_rooms_closed, server)
    return first, opened


def _collect_client_garbage() -> None:
    # A disconnected RoomClient sits in a reference cycle with its replica: free earlier
    # replicas (10 MB each for the big notebook) before a measurement, not during one.
    gc.collect()


async def _document(server: ServerProcess, path: str) -> bytes:
    _, client = await join_once(server, path)
    update = client.doc.get_update()
    await client.disconnect()
    return update


def bench_join(root: Path, options: Options, problems: list[str]) -> str:
    rows = []
    with ServerProcess(root, config=section_config(options, root)) as server:
        for cells in options.join_cells:
            for outputs in (False, True):
                log(f"join: {cells} cells, {'with' if outputs else 'no'} outputs")
                name = f"{cells}-{'outputs' if outputs else 'plain'}"
                source = write_notebook(root / "join" / f"{name}.ipynb", cells, outputs=outputs)
                paths = []
                for run in range(options.runs):
                    copy = source.with_name(f"{name}-{run}.ipynb")
                    shutil.copyfile(source, copy)
                    paths.append(str(copy.relative_to(root)))
                first, opened = asyncio.run(_join_times(server, paths))
                document = asyncio.run(_document(server, paths[0]))
                started = time.perf_counter()
                Doc().apply_update(document)
                apply_seconds = time.perf_counter() - started
                wait_rooms_closed(server)
                reference = REFERENCE_JOIN_OPEN_1000_OUTPUTS_MS if cells == 1000 and outputs else ""
                rows.append(
                    [
                        str(cells),
                        "10 kB" if outputs else "none",
                        mib(source.stat().st_size),
                        mib(len(document)),
                        ms(statistics.median(first)),
                        ms(statistics.median(opened)),
                        ms(apply_seconds),
                        reference,
                    ]
                )
    headers = [
        "cells",
        "outputs per cell",
        "file MiB",
        "CRDT MiB",
        "first join ms",
        "join open room ms",
        "CRDT apply alone ms",
        "jupyter-collaboration, open room ms",
    ]
    title = f"### Join: connect until in sync (median of {options.runs})"
    return f"{title}\n\n{table(headers, rows)}"


# -- 2. keystroke latency ------------------------------------------------------------------


def bench_latency(root: Path, options: Options, problems: list[str]) -> str:
    rows = []
    # Small notebooks, then one large one: its write-backs are large too.
    runs = [(peers, 10, False) for peers in options.latency_peers]
    if options.latency_big_peers:
        runs.append((options.latency_big_peers, 1000, True))
    with ServerProcess(root, config=section_config(options, root)) as server:
        for peers, cells, outputs in runs:
            label = f"{cells} cells" + (", 10 kB outputs" if outputs else "")
            log(f"latency: {peers} peers, {label}, {options.keystrokes} keystrokes")
            path = f"latency-{peers}-{cells}.ipynb"
            write_notebook(root / path, cells, outputs=outputs)
            watchers = [PeerSpec(None, (0,)) for _ in range(peers - 1)]
            groups = [[PeerSpec(0, ())], *split(watchers, options.workers)]
            run = run_typing(
                server,
                path,
                groups,
                keystrokes=options.keystrokes,
                interval=options.interval,
                converge_timeout=30,
            )
            wait_rooms_closed(server)
            check_run(run, f"latency, {peers} peers, {label}", problems)
            rows.append(
                [
                    label,
                    str(peers),
                    str(run.edits),
                    *(ms(percentile(run.all_peers, p)) for p in (50, 95, 99)),
                    ms(max(run.all_peers, default=float("nan"))),
                    ms(percentile(run.first_peer, 50)),
                    ms(percentile(run.first_peer, 99)),
                    ms(percentile(run.delivery, 99)),
                    f"{run.server_cpu:.0f}",
                    f"{run.clients_cpu:.0f}",
                    f"{run.other_cpu:.0f}",
                    str(run.missing),
                    "" if outputs else REFERENCE_LATENCY_P99_MS.get(peers, ""),
                ]
            )
    headers = [
        "notebook",
        "peers",
        "keystrokes",
        "all p50 ms",
        "all p95 ms",
        "all p99 ms",
        "all max ms",
        "first p50 ms",
        "first p99 ms",
        "each p99 ms",
        "server CPU %",
        "peers CPU %",
        "other CPU %",
        "lost",
        "jupyter-collaboration p99 ms",
    ]
    title = (
        f"### Keystroke propagation: one typist, a keystroke every "
        f"{options.interval * 1000:g} ms, {options.workers} watcher processes"
    )
    return f"{title}\n\n{table(headers, rows, text_columns=1)}"


# -- 3. everyone typing --------------------------------------------------------------------


def bench_throughput(root: Path, options: Options, problems: list[str]) -> str:
    rows = []
    with ServerProcess(root, config=section_config(options, root)) as server:
        for peers, interval in options.throughput_runs:
            keystrokes = max(1, round(options.throughput_seconds / interval))
            log(f"throughput: {peers} peers, {keystrokes} keystrokes each, {interval * 1000:g} ms")
            path = f"throughput-{peers}-{interval * 1000:g}.ipynb"
            write_notebook(root / path, peers)
            specs = [
                PeerSpec(j, tuple(c for c in range(peers) if c != j), phase=j * interval / peers)
                for j in range(peers)
            ]
            run = run_typing(
                server,
                path,
                split(specs, options.workers),
                keystrokes=keystrokes,
                interval=interval,
                converge_timeout=240,
            )
            wait_rooms_closed(server)
            check_run(run, f"throughput, {peers} peers", problems)
            typed = run.edits / run.typing_seconds if run.typing_seconds else float("nan")
            rows.append(
                [
                    str(peers),
                    f"{interval * 1000:g}",
                    f"{peers / interval:.0f}",
                    f"{typed:.0f}",
                    f"{run.edits / run.wall_seconds:.0f}" if run.wall_seconds else "n/a",
                    f"{run.converge_seconds:.2f}",
                    ms(percentile(run.delivery, 50)),
                    ms(percentile(run.delivery, 99)),
                    ms(percentile(run.all_peers, 99)),
                    f"{run.server_cpu:.0f}",
                    f"{run.clients_cpu:.0f}",
                    f"{run.other_cpu:.0f}",
                    str(run.missing),
                    REFERENCE_THROUGHPUT_50 if peers == 50 and interval <= 0.02 else "",
                ]
            )
    headers = [
        "peers",
        "ms between keys",
        "offered edits/s",
        "typed edits/s",
        "delivered edits/s",
        "converge s",
        "seen p50 ms",
        "seen p99 ms",
        "all peers p99 ms",
        "server CPU %",
        "peers CPU %",
        "other CPU %",
        "lost",
        "jupyter-collaboration edits/s; p99 ms",
    ]
    title = (
        f"### Everyone typing: each peer appends to its own cell for "
        f"{options.throughput_seconds:g} s, {options.workers} peer processes"
    )
    return f"{title}\n\n{table(headers, rows)}"


# -- 4. memory -----------------------------------------------------------------------------


async def _open_rooms(server: ServerProcess, paths: list[str]) -> list[RoomClient]:
    clients = []
    for path in paths:
        _, client = await join_once(server, path)
        clients.append(client)
    return clients


async def _while_open(
    server: ServerProcess, paths: list[str], measure: Callable[[str], int], label: str
) -> tuple[int, int]:
    """Open every room with one peer each; RSS and total CRDT bytes while they are open."""
    clients = await _open_rooms(server, paths)
    rss = await asyncio.to_thread(measure, label)
    status = await asyncio.to_thread(server.get_json, "api/crdtsync/status")
    for client in clients:
        await client.disconnect()
    return rss, sum(room["doc_bytes"] for room in status["rooms"])


async def _open_and_leave(server: ServerProcess, paths: list[str]) -> None:
    for client in await _open_rooms(server, paths):
        await client.disconnect()


def bench_memory(root: Path, options: Options, problems: list[str]) -> str:
    count, cells = options.memory_rooms, options.memory_cells
    source = write_notebook(root / "memory" / "source.ipynb", cells)
    paths = []
    for index in range(count + 1):
        copy = source.with_name(f"room-{index}.ipynb")
        shutil.copyfile(source, copy)
        paths.append(str(copy.relative_to(root)))
    warmup, paths = paths[0], paths[1:]
    config = section_config(options, root)
    config.setdefault("ServerApp", {})["jpserver_extensions"] = PROBE_EXTENSIONS
    rows: list[list[str]] = []
    with ServerProcess(root, config=config) as server:
        process = psutil.Process(server.process.pid)  # type: ignore[union-attr]

        def measure(label: str) -> int:
            time.sleep(1.0)
            rss = int(process.memory_info().rss)
            rooms = len(server.get_json("api/crdtsync/status")["rooms"])
            rows.append([label, str(rooms), mib(rss)])
            return rss

        measure("server started")
        asyncio.run(_open_and_leave(server, [warmup]))
        wait_rooms_closed(server)
        baseline = measure("one room opened and evicted: baseline")
        per_room = []
        for cycle in (1, 2, 3):
            log(f"memory: cycle {cycle}, {count} rooms of {cells} cells")
            label = f"cycle {cycle}: {count} rooms open"
            rss, doc_bytes = asyncio.run(_while_open(server, paths, measure, label))
            per_room.append((rss - baseline) / count)
            wait_rooms_closed(server)
            measure(f"cycle {cycle}: peers left, rooms evicted")
        probe = server.get_json("api/benchprobe")
    rows.append(["then gc.collect() in the server", "0", mib(probe["rss_after_collect"])])
    rows.append(["then malloc_trim(0) in the server", "0", mib(probe["rss_after_trim"])])
    lingering = probe["objects_before_collect"]
    if probe["objects"]["Room"]:
        problems.append(f"memory: {probe['objects']['Room']} evicted rooms are never freed")
    per_room_text = ", ".join(f"{mib(value * 1024)} KiB" for value in per_room)
    notes = [
        f"RSS per open room above the baseline, cycles 1-3: {per_room_text} "
        f"(jupyter-collaboration: {REFERENCE_RSS_PER_ROOM}).",
        f"Objects still in the server after the last eviction, before a full garbage "
        f"collection: {lingering['Room']} Room, {lingering['YNotebook']} YNotebook, "
        f"{lingering['Peer']} Peer, {lingering['RoomWebSocketHandler']} RoomWebSocketHandler; "
        f"after it: {probe['objects']['Room']} Room ({probe['collected']} objects collected).",
        f"CRDT state of the {count} open rooms (status `doc_bytes`): {mib(doc_bytes)} MiB in all.",
    ]
    title = f"### Server RSS: {count} rooms of {cells} cells, one peer each"
    body = table(["phase", "open rooms", "RSS MiB"], rows, text_columns=1)
    return f"{title}\n\n{body}\n\n" + "\n".join(f"- {note}" for note in notes)


# -- command line --------------------------------------------------------------------------


class _NoGuard:
    """A room's content guard replaced by nothing: the baseline of `bench_guard`."""

    def start(self) -> None: ...

    def finish(self) -> None:
        return None

    def forget(self) -> None: ...

    def close(self) -> None: ...


def bench_guard(root: Path, options: Options, problems: list[str]) -> str:
    """What the content guard adds to each update a peer sends, measured in-process on a
    room of 100 cells: a keystroke (a Text edit, which the guard does not look at) and a
    new cell (which it checks), with and without the guard."""
    import logging

    from jupyter_crdt_sync.room import Room

    count = 300 if options.quick else 3000
    notebook = json.loads(json.dumps(nbformat.read(write_notebook(root / "g.ipynb", 100), 4)))

    def updates(kind: str) -> tuple[bytes, list[bytes]]:
        """The document a room starts from, and a peer's updates to it."""
        peer = Room("peer", log=logging.getLogger("bench"))
        peer.load(notebook)
        initial = peer.doc.get_update()
        made = []
        for index in range(count):
            before = peer.doc.get_state()
            if kind == "keystroke":
                source = peer.notebook.ycells[index % 100]["source"]
                source.insert(len(source), "x")
            else:
                peer.notebook.append_cell(
                    {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}
                )
            made.append(peer.doc.get_update(before))
        return initial, made

    rows = []
    for kind in ("keystroke", "new cell"):
        initial, made = updates(kind)
        timings = {}
        for label in ("without the guard", "with the guard"):
            room = Room("bench.ipynb", log=logging.getLogger("bench"))
            room.restore([initial], lineage=0)
            if label == "without the guard":
                room._guard.close()
                room._guard = _NoGuard()  # type: ignore[assignment]
            sender = object()
            started = time.perf_counter()
            for update in made:
                room._apply_update(sender, update)  # type: ignore[arg-type]
            timings[label] = (time.perf_counter() - started) / len(made) * 1e6
            room.close(1000, "done")
        rows.append(
            [
                kind,
                f"{timings['without the guard']:.0f}",
                f"{timings['with the guard']:.0f}",
                f"{timings['with the guard'] - timings['without the guard']:+.0f}",
            ]
        )
    return "### Content guard: microseconds per peer update (100-cell room)\n\n" + table(
        ["update", "without the guard (µs)", "with the guard (µs)", "difference (µs)"], rows
    )


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark the room server: join, latency, throughput, memory."
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run (about a minute), e.g. for CI"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help="worker processes for the watching or typing peers (default 3)",
    )
    parser.add_argument("--runs", type=int, help="joins per notebook for the median (default 5)")
    parser.add_argument("--join-cells", help="notebook sizes to join (default 10,100,1000)")
    parser.add_argument("--latency-peers", help="room sizes for latency (default 2,10,50)")
    parser.add_argument(
        "--latency-big-peers",
        type=int,
        help="room size for a latency run in a 1000-cell notebook with outputs "
        "(default 10; 0 skips it; skipped with --quick)",
    )
    parser.add_argument("--keystrokes", type=int, help="keystrokes per latency run (default 500)")
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=20.0,
        help="time between the typist's keystrokes in the latency runs (default 20)",
    )
    parser.add_argument(
        "--throughput-runs",
        help="PEERSxMS list: peers typing at once and ms between each one's keystrokes "
        "(default 10x20,50x20,50x200)",
    )
    parser.add_argument(
        "--throughput-seconds", type=float, help="typing time per throughput run (default 4)"
    )
    parser.add_argument("--memory-rooms", type=int, help="rooms open at once (default 100)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="Class.trait=VALUE",
        help="a server setting on top of the defaults, VALUE in JSON "
        "(e.g. --set CRDTSync.closed_room_cache_bytes=0); may be repeated",
    )
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; expected some of {SECTIONS}")
    quick = bool(args.quick)
    try:
        throughput_runs = tuple(
            (int(peers), float(interval) / 1000)
            for peers, _, interval in (
                run.partition("x")
                for run in (args.throughput_runs or ("10x20" if quick else "10x20,50x20,50x200"))
                .replace(" ", "")
                .split(",")
            )
        )
    except ValueError:
        parser.error(f"--throughput-runs expects PEERSxMS,..., got {args.throughput_runs!r}")
    return Options(
        quick=quick,
        sections=sections,
        workers=max(1, args.workers),
        runs=args.runs or (1 if quick else 5),
        join_cells=_sizes(args.join_cells) or ((10, 100) if quick else (10, 100, 1000)),
        latency_peers=_sizes(args.latency_peers) or ((2, 10) if quick else (2, 10, 50)),
        latency_big_peers=(
            args.latency_big_peers if args.latency_big_peers is not None else 0 if quick else 10
        ),
        keystrokes=args.keystrokes or (50 if quick else 500),
        interval=args.interval_ms / 1000,
        throughput_runs=throughput_runs,
        throughput_seconds=args.throughput_seconds or (1.0 if quick else 4.0),
        memory_rooms=args.memory_rooms or (10 if quick else 100),
        memory_cells=100,
        server_config=_server_config(parser, args.set),
    )


def _sizes(value: str | None) -> tuple[int, ...]:
    return tuple(int(v) for v in value.split(",") if v.strip()) if value else ()


def _server_config(
    parser: argparse.ArgumentParser, settings: list[str]
) -> dict[str, dict[str, Any]]:
    config = {section: dict(values) for section, values in SERVER_CONFIG.items()}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        section, dot, trait = key.rpartition(".")
        if not (sep and dot and section and trait):
            parser.error(f"--set expects Class.trait=VALUE, got {setting!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        config.setdefault(section, {})[trait] = value
    return config


def describe_machine(busy: float) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1] for line in info if line.startswith("model name")]
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        f"CPU busy before the run: {busy:.0f}%"
    )


def describe_checkout() -> str:
    # Read-only git commands; GIT_OPTIONAL_LOCKS=0 keeps them from refreshing the index.
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    git = ["git", "-C", str(REPO_ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "diff", "--quiet", "HEAD", "--", "jupyter_crdt_sync"], env=env, check=False
        ).returncode
        if changed:
            commit += " with uncommitted changes in jupyter_crdt_sync/"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("jupyter_server", "tornado", "pycrdt", "jupyter-ydoc")
    )
    return f"checkout {commit}; {packages}"


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    benches: dict[str, Callable[[Path, Options, list[str]], str]] = {
        "join": bench_join,
        "latency": bench_latency,
        "throughput": bench_throughput,
        "memory": bench_memory,
        "guard": bench_guard,
    }
    problems: list[str] = []
    started = time.monotonic()
    print(f"## bench_rooms {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    busy = psutil.cpu_percent(interval=1.0)
    print(f"\n{describe_machine(busy)}\n{describe_checkout()}", flush=True)
    if busy > 25:
        log("warning: the machine is busy; the figures will be noisy")
    with tempfile.TemporaryDirectory(prefix="bench-rooms-") as tmp:
        # Nothing of the benchmark's lands in the user's Jupyter data directory.
        os.environ["JUPYTER_DATA_DIR"] = str(Path(tmp) / "jupyter-data")
        for section in options.sections:
            root = Path(tmp) / section
            root.mkdir()
            print(f"\n{benches[section](root, options, problems)}", flush=True)
    print(f"\nTotal time: {time.monotonic() - started:.0f} s")
    for problem in problems:
        log(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
