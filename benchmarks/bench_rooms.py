#!/usr/bin/env python
"""Benchmarks of the room server: join time, keystroke latency, throughput and memory.

Starts a real `jupyter server` with the extension on 127.0.0.1 (tests/server_process.py),
drives it with `jupyter_crdt_sync.client.RoomClient` peers and prints markdown tables.

    python benchmarks/bench_rooms.py                  # everything, about 5 minutes
    python benchmarks/bench_rooms.py --quick          # smoke run, about 1 minute
    python benchmarks/bench_rooms.py --sections latency,throughput

Peers that type or watch run in worker processes (multiprocessing, spawn), each with its
own asyncio loop, so the client side is less of a bottleneck. Send and arrival times are
`time.monotonic()` (CLOCK_MONOTONIC, one clock for every process on a Linux machine).
See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import multiprocessing
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
# The server subprocess must import the extension from this checkout too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)

import nbformat  # noqa: E402
import psutil  # noqa: E402
from pycrdt import Doc, Text, TextEvent  # noqa: E402

from jupyter_crdt_sync.client import RoomClient  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

SECTIONS = ("join", "latency", "throughput", "memory")
# Short eviction so that rooms close between measurements and the memory section
# does not wait long; every other setting is the extension's default.
SERVER_CONFIG = {"CRDTSync": {"eviction_delay": 0.5}}
OUTPUT_BYTES = 7500  # random bytes per cell output: 10,000 characters of base64


@dataclass(frozen=True)
class Options:
    quick: bool
    sections: tuple[str, ...]
    workers: int
    runs: int
    join_cells: tuple[int, ...]
    latency_peers: tuple[int, ...]
    keystrokes: int
    interval: float
    throughput_peers: tuple[int, ...]
    throughput_seconds: float
    throughput_interval: float
    memory_rooms: int
    memory_cells: int


def log(message: str) -> None:
    """Progress, on stderr, so that stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- notebooks and statistics --------------------------------------------------------------


def write_notebook(path: Path, cells: int, *, outputs: bool = False, seed: int = 0) -> Path:
    """A notebook of `cells` code cells with ids cell-0...; with outputs, ~10 kB per cell."""
    rng = random.Random(seed)
    notebook_cells = []
    for index in range(cells):
        cell = nbformat.v4.new_code_cell(
            f"import numpy as np\nx = np.arange({index})\nprint(x.sum())\n",
            execution_count=index + 1,
        )
        cell["id"] = f"cell-{index}"
        if outputs:
            image = base64.b64encode(rng.randbytes(OUTPUT_BYTES)).decode("ascii")
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


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def wait_rooms_closed(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while server.get_json("api/crdtsync/status")["rooms"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"rooms still open after {timeout} s")
        time.sleep(0.1)


def room_status(server: ServerProcess, path: str) -> dict[str, Any]:
    for room in server.get_json("api/crdtsync/status")["rooms"]:
        if room["path"] == path:
            return dict(room)
    raise KeyError(path)


# -- peers in worker processes -------------------------------------------------------------


@dataclass(frozen=True)
class PeerSpec:
    type_cell: int | None  # the cell whose end this peer types at, if it types
    observe_cells: tuple[int, ...]  # the cells whose incoming keystrokes it timestamps
    phase: float = 0.0  # offset of its typing schedule, to spread typists over an interval


@dataclass
class WorkerReport:
    sends: dict[int, list[float]] = field(default_factory=dict)  # cell -> send times
    # one entry per watching peer and cell: (cell, arrival time of each keystroke)
    arrivals: list[tuple[int, list[float]]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    out_of_order: int = 0


class KeystrokeClock:
    """Text observer: the arrival time of each character appended to one cell."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.times: list[float] = []
        self.out_of_order = 0

    def __call__(self, event: TextEvent) -> None:
        now = time.monotonic()
        position = 0
        for op in event.delta:
            if "retain" in op:
                position += op["retain"]
            elif "insert" in op:
                count = len(op["insert"])
                if position - self.base != len(self.times):
                    self.out_of_order += 1
                self.times.extend([now] * count)
                position += count


def peer_worker(url: str, token: str, path: str, specs: list[PeerSpec], conn: Connection) -> None:
    """Entry point of a worker process: run `specs` as peers, as the parent directs."""
    try:
        asyncio.run(_run_peers(url, token, path, specs, conn))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _run_peers(
    url: str, token: str, path: str, specs: list[PeerSpec], conn: Connection
) -> None:
    loop = asyncio.get_running_loop()
    clients: list[RoomClient] = []
    clocks: list[tuple[int, KeystrokeClock]] = []
    subscriptions = []
    typists: list[tuple[PeerSpec, Text, int]] = []
    for spec in specs:
        client = RoomClient(url, path, token=token)
        await client.connect(timeout=60)
        clients.append(client)
        cells = client.notebook.ycells
        for cell in spec.observe_cells:
            text: Text = cells[cell]["source"]
            clock = KeystrokeClock(len(text))
            subscriptions.append(text.observe(clock))
            clocks.append((cell, clock))
        if spec.type_cell is not None:
            text = cells[spec.type_cell]["source"]
            typists.append((spec, text, len(text)))
    conn.send(("ready", None))
    command, (start, keystrokes, interval, deadline) = await loop.run_in_executor(None, conn.recv)
    assert command == "go"
    cpu_start = time.process_time()
    typing = [
        _type(text, base, start + spec.phase, keystrokes, interval) for spec, text, base in typists
    ]
    sends = await asyncio.gather(*typing)
    while time.monotonic() < deadline and any(len(c.times) < keystrokes for _, c in clocks):
        await asyncio.sleep(0.01)
    report = WorkerReport(
        sends={
            spec.type_cell: times
            for (spec, _, _), times in zip(typists, sends, strict=True)
            if spec.type_cell is not None
        },
        arrivals=[(cell, clock.times) for cell, clock in clocks],
        cpu_seconds=time.process_time() - cpu_start,
        out_of_order=sum(clock.out_of_order for _, clock in clocks),
    )
    conn.send(("done", report))
    for client in clients:
        await client.disconnect()


async def _type(
    text: Text, base: int, start: float, keystrokes: int, interval: float
) -> list[float]:
    """Append one character every `interval` seconds from `start`; the send times."""
    sends = []
    for k in range(keystrokes):
        delay = start + k * interval - time.monotonic()
        # A late typist still lets the loop read between keystrokes.
        await asyncio.sleep(max(delay, 0))
        sends.append(time.monotonic())
        text.insert(base + k, "x")
    return sends


@dataclass
class TypingRun:
    peers: int
    keystrokes: int  # per typing peer
    wall_seconds: float  # from the first keystroke until the last arrival
    typing_seconds: float  # from the first keystroke to the last
    converge_seconds: float  # from the last keystroke until every peer had every edit
    edits: int
    missing: int  # deliveries that never arrived
    out_of_order: int
    delivery: list[float]  # one latency per (edit, receiving peer)
    all_peers: list[float]  # per edit: until the last receiving peer had it
    server_cpu_percent: float
    client_cpu_percent: float


def run_typing(
    server: ServerProcess,
    path: str,
    groups: list[list[PeerSpec]],
    *,
    keystrokes: int,
    interval: float,
    converge_timeout: float,
) -> TypingRun:
    """Run one group of peers per worker process; every typist types `keystrokes` times."""
    context = multiprocessing.get_context("spawn")
    processes = []
    conns: list[Connection] = []
    try:
        for specs in groups:
            parent, child = context.Pipe()
            process = context.Process(
                target=peer_worker,
                args=(server.url, server.token, path, specs, child),
                daemon=True,
            )
            process.start()
            processes.append(process)
            conns.append(parent)
        for conn in conns:
            _receive(conn, "ready", timeout=120)
        server_process = psutil.Process(server.process.pid)  # type: ignore[union-attr]
        start = time.monotonic() + 0.5
        deadline = start + keystrokes * interval + converge_timeout
        cpu_before = server_process.cpu_times()
        wall_before = time.monotonic()
        for conn in conns:
            conn.send(("go", (start, keystrokes, interval, deadline)))
        wait = deadline - time.monotonic() + 60
        reports = [_receive(conn, "done", timeout=wait) for conn in conns]
        cpu_after = server_process.cpu_times()
        wall = time.monotonic() - wall_before
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)

    sends: dict[int, list[float]] = {}
    for report in reports:
        sends.update(report.sends)
    first_send = min(times[0] for times in sends.values())
    last_send = max(times[-1] for times in sends.values())
    delivery: list[float] = []
    latest: dict[int, list[float]] = {cell: [0.0] * len(times) for cell, times in sends.items()}
    missing = 0
    last_arrival = last_send
    for report in reports:
        for cell, arrivals in report.arrivals:
            sent = sends[cell]
            missing += len(sent) - len(arrivals)
            worst = latest[cell]
            for k, (t_sent, t_arrived) in enumerate(zip(sent, arrivals, strict=False)):
                delivery.append(t_arrived - t_sent)
                worst[k] = max(worst[k], t_arrived)
            if arrivals:
                last_arrival = max(last_arrival, arrivals[-1])
    all_peers = [
        t_arrived - t_sent
        for cell, sent in sends.items()
        for t_sent, t_arrived in zip(sent, latest[cell], strict=True)
    ]
    server_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return TypingRun(
        peers=sum(len(specs) for specs in groups),
        keystrokes=keystrokes,
        wall_seconds=last_arrival - first_send,
        typing_seconds=last_send - first_send,
        converge_seconds=last_arrival - last_send,
        edits=sum(len(times) for times in sends.values()),
        missing=missing,
        out_of_order=sum(report.out_of_order for report in reports),
        delivery=delivery,
        all_peers=all_peers,
        server_cpu_percent=100 * server_cpu / wall,
        client_cpu_percent=100 * sum(report.cpu_seconds for report in reports) / wall,
    )


def _receive(conn: Connection, expected: str, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"no {expected!r} from a peer worker within {timeout:.0f} s")
    kind, payload = conn.recv()
    if kind != expected:
        raise RuntimeError(f"peer worker: expected {expected!r}, got {kind!r}: {payload}")
    return payload


def split(specs: list[PeerSpec], groups: int) -> list[list[PeerSpec]]:
    """Deal peers round-robin into at most `groups` non-empty groups."""
    groups = max(1, min(groups, len(specs)))
    return [specs[i::groups] for i in range(groups)]


# -- sections ------------------------------------------------------------------------------


async def _join_once(server: ServerProcess, path: str) -> tuple[float, RoomClient]:
    client = RoomClient(server.url, path, token=server.token)
    started = time.perf_counter()
    await client.connect(timeout=120)
    return time.perf_counter() - started, client


async def _join_times(server: ServerProcess, paths: list[str]) -> tuple[list[float], list[float]]:
    """First joins, one fresh copy each, then joins of the first copy held open by a peer."""
    first = []
    for path in paths:
        elapsed, client = await _join_once(server, path)
        await client.disconnect()
        first.append(elapsed)
    await asyncio.to_thread(wait_rooms_closed, server)
    _, holder = await _join_once(server, paths[0])
    opened = []
    for _ in paths:
        elapsed, client = await _join_once(server, paths[0])
        await client.disconnect()
        opened.append(elapsed)
    await holder.disconnect()
    await asyncio.to_thread(wait_rooms_closed, server)
    return first, opened


def bench_join(root: Path, options: Options) -> str:
    rows = []
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        for cells in options.join_cells:
            for outputs in (False, True):
                label = f"{cells} cells, {'10 kB outputs' if outputs else 'no outputs'}"
                log(f"join: {label}")
                source = write_notebook(
                    root / "join" / f"{cells}-{outputs}.ipynb", cells, outputs=outputs
                )
                paths = []
                for run in range(options.runs):
                    copy = source.with_name(f"{cells}-{outputs}-{run}.ipynb")
                    shutil.copyfile(source, copy)
                    paths.append(str(copy.relative_to(root)))
                first, opened = asyncio.run(_join_times(server, paths))
                doc = asyncio.run(_document_update(server, paths[0]))
                started = time.perf_counter()
                Doc().apply_update(doc)
                apply_seconds = time.perf_counter() - started
                wait_rooms_closed(server)
                target = "77" if cells == 1000 and outputs else ""
                rows.append(
                    [
                        str(cells),
                        "10 kB" if outputs else "none",
                        mib(source.stat().st_size),
                        mib(len(doc)),
                        ms(statistics.median(first)),
                        ms(statistics.median(opened)),
                        ms(apply_seconds),
                        target,
                    ]
                )
    headers = [
        "cells",
        "outputs/cell",
        "file MiB",
        "doc MiB",
        "first join ms",
        "join open room ms",
        "client apply ms",
        "jupyter-collaboration ms (open)",
    ]
    return f"### Join time (median of {options.runs}; connect until synced)\n\n" + table(
        headers, rows
    )


async def _document_update(server: ServerProcess, path: str) -> bytes:
    _, client = await _join_once(server, path)
    update = client.doc.get_update()
    await client.disconnect()
    return update


def bench_latency(root: Path, options: Options) -> str:
    rows = []
    targets = {10: "2.6", 50: "7.6"}
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        for peers in options.latency_peers:
            log(f"latency: {peers} peers, {options.keystrokes} keystrokes")
            path = f"latency-{peers}.ipynb"
            write_notebook(root / path, 10)
            receivers = [PeerSpec(None, (0,)) for _ in range(peers - 1)]
            groups = [[PeerSpec(0, ())], *split(receivers, options.workers)]
            run = run_typing(
                server,
                path,
                groups,
                keystrokes=options.keystrokes,
                interval=options.interval,
                converge_timeout=30,
            )
            wait_rooms_closed(server)
            rows.append(
                [
                    str(peers),
                    str(len(groups) - 1),
                    str(run.edits),
                    *(ms(percentile(run.all_peers, p)) for p in (50, 95, 99)),
                    ms(max(run.all_peers, default=math.nan)),
                    ms(percentile(run.delivery, 99)),
                    f"{run.server_cpu_percent:.0f}",
                    str(run.missing),
                    targets.get(peers, ""),
                ]
            )
    headers = [
        "peers",
        "watcher procs",
        "keystrokes",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "p99 per peer ms",
        "server CPU %",
        "lost",
        "jupyter-collaboration p99 ms",
    ]
    return (
        f"### Keystroke propagation (one typist, a keystroke every "
        f"{options.interval * 1000:.0f} ms; time until every other peer has it)\n\n"
        + table(headers, rows)
    )


def bench_throughput(root: Path, options: Options) -> str:
    rows = []
    keystrokes = max(1, round(options.throughput_seconds / options.throughput_interval))
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        for peers in options.throughput_peers:
            log(f"throughput: {peers} peers typing {keystrokes} keystrokes each")
            path = f"throughput-{peers}.ipynb"
            write_notebook(root / path, peers)
            specs = [
                PeerSpec(
                    j,
                    tuple(c for c in range(peers) if c != j),
                    phase=j * options.throughput_interval / peers,
                )
                for j in range(peers)
            ]
            run = run_typing(
                server,
                path,
                split(specs, options.workers),
                keystrokes=keystrokes,
                interval=options.throughput_interval,
                converge_timeout=240,
            )
            wait_rooms_closed(server)
            target = "~385 (saturated), p99 2800" if peers == 50 else ""
            rows.append(
                [
                    str(peers),
                    f"{peers / options.throughput_interval:.0f}",
                    f"{run.edits / run.typing_seconds:.0f}" if run.typing_seconds else "n/a",
                    f"{run.edits / run.wall_seconds:.0f}",
                    f"{run.converge_seconds:.2f}",
                    ms(percentile(run.delivery, 50)),
                    ms(percentile(run.delivery, 99)),
                    ms(percentile(run.all_peers, 99)),
                    f"{run.server_cpu_percent:.0f}",
                    f"{run.client_cpu_percent:.0f}",
                    str(run.missing),
                    target,
                ]
            )
    headers = [
        "peers",
        "offered edits/s",
        "typed edits/s",
        "delivered edits/s",
        "converge s",
        "p50 seen ms",
        "p99 seen ms",
        "p99 all peers ms",
        "server CPU %",
        "clients CPU %",
        "lost",
        "jupyter-collaboration edits/s, p99 ms",
    ]
    return (
        f"### Everyone typing (each peer appends to its own cell every "
        f"{options.throughput_interval * 1000:.0f} ms for {options.throughput_seconds:g} s)"
        "\n\n" + table(headers, rows)
    )


async def _open_rooms(server: ServerProcess, paths: list[str]) -> list[RoomClient]:
    clients = []
    for path in paths:
        _, client = await _join_once(server, path)
        clients.append(client)
    return clients


async def _close_clients(clients: list[RoomClient]) -> None:
    for client in clients:
        await client.disconnect()


async def _measure_while_open(
    server: ServerProcess, paths: list[str], measure: Callable[[str], int], label: str
) -> int:
    clients = await _open_rooms(server, paths)
    rss = await asyncio.to_thread(measure, label)
    await _close_clients(clients)
    return rss


async def _open_and_close(server: ServerProcess, paths: list[str]) -> None:
    await _close_clients(await _open_rooms(server, paths))


def bench_memory(root: Path, options: Options) -> str:
    count, cells = options.memory_rooms, options.memory_cells
    paths = []
    source = write_notebook(root / "memory" / "source.ipynb", cells)
    for index in range(count + 1):
        copy = source.with_name(f"room-{index}.ipynb")
        shutil.copyfile(source, copy)
        paths.append(str(copy.relative_to(root)))
    warmup, paths = paths[0], paths[1:]
    rows = []
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        process = psutil.Process(server.process.pid)  # type: ignore[union-attr]

        def measure(label: str) -> int:
            time.sleep(1.0)
            rss = int(process.memory_info().rss)
            rooms = len(server.get_json("api/crdtsync/status")["rooms"])
            rows.append([label, str(rooms), mib(rss)])
            return rss

        measure("server started")
        asyncio.run(_open_and_close(server, [warmup]))
        wait_rooms_closed(server)
        baseline = measure("one room opened and evicted (baseline)")
        per_room = []
        for cycle in (1, 2, 3):
            log(f"memory: cycle {cycle}, {count} rooms of {cells} cells")
            label = f"cycle {cycle}: {count} rooms open"
            open_rss = asyncio.run(_measure_while_open(server, paths, measure, label))
            per_room.append((open_rss - baseline) / count)
            wait_rooms_closed(server)
            measure(f"cycle {cycle}: all peers left, rooms evicted")
    summary = ", ".join(f"{mib(value * 1024)} KiB" for value in per_room)
    return (
        f"### Server RSS with {count} rooms of {cells} cells, one peer each "
        f"(eviction_delay 0.5 s)\n\n"
        + table(["phase", "open rooms", "RSS MiB"], rows)
        + f"\n\nRSS per open room above the baseline, by cycle: {summary} "
        "(jupyter-collaboration: ~0.9 MB per room, never released)"
    )


# -- command line --------------------------------------------------------------------------


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run (about a minute), e.g. for CI"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help="worker processes for the watching or typing peers (default 3)",
    )
    parser.add_argument("--runs", type=int, help="joins per notebook for the median")
    parser.add_argument("--keystrokes", type=int, help="keystrokes in a latency run")
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=20.0,
        help="typing interval of one peer, in ms (default 20)",
    )
    parser.add_argument("--throughput-seconds", type=float, help="typing time per throughput run")
    parser.add_argument("--memory-rooms", type=int, help="rooms open at once (default 100)")
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; expected some of {SECTIONS}")
    quick = bool(args.quick)
    interval = args.interval_ms / 1000
    return Options(
        quick=quick,
        sections=sections,
        workers=max(1, args.workers),
        runs=args.runs or (1 if quick else 5),
        join_cells=(10, 100) if quick else (10, 100, 1000),
        latency_peers=(2, 10) if quick else (2, 10, 50),
        keystrokes=args.keystrokes or (50 if quick else 400),
        interval=interval,
        throughput_peers=(10,) if quick else (10, 50),
        throughput_seconds=args.throughput_seconds or (1.0 if quick else 4.0),
        throughput_interval=interval,
        memory_rooms=args.memory_rooms or (10 if quick else 100),
        memory_cells=100,
    )


def machine_summary() -> str:
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
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    benches: dict[str, Callable[[Path, Options], str]] = {
        "join": bench_join,
        "latency": bench_latency,
        "throughput": bench_throughput,
        "memory": bench_memory,
    }
    started = time.monotonic()
    print(f"## bench_rooms{' --quick' if options.quick else ''}: {machine_summary()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-rooms-") as tmp:
        for section in options.sections:
            root = Path(tmp) / section
            root.mkdir()
            print("\n" + benches[section](root, options), flush=True)
    print(f"\nTotal time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
