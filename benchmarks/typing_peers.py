"""Peers that type and watch, in worker processes: the client side of the typing benchmarks.

Each worker process runs a group of peers (`RoomClient`s) on its own asyncio loop, so
that 50 peers are not 50 connections served by one Python thread. A typing peer appends
one character to the end of its cell at fixed times; a watching peer timestamps every
character that arrives in the cells it watches.

All times are `time.monotonic()`: CLOCK_MONOTONIC, one clock for every process of a Linux
machine, so a send time taken in one process and an arrival time taken in another can be
subtracted.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psutil
from pycrdt import Text, TextEvent

from jupyter_crdt_sync.client import RoomClient
from tests.server_process import ServerProcess


@dataclass(frozen=True)
class PeerSpec:
    type_cell: int | None  # the cell this peer appends to, if it types
    watch_cells: tuple[int, ...]  # the cells whose incoming characters it timestamps
    phase: float = 0.0  # seconds added to its typing schedule, to spread typists out


@dataclass
class WorkerReport:
    sends: dict[int, list[float]] = field(default_factory=dict)  # cell -> send times
    # One entry per watching peer and watched cell: (cell, arrival time of each character).
    arrivals: list[tuple[int, list[float]]] = field(default_factory=list)
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
                # Several keystrokes arrive as one insert when the server merges updates.
                count = len(op["insert"])
                if position - self.base != len(self.times):
                    self.out_of_order += 1
                self.times.extend([now] * count)
                position += count


def peer_worker(
    url: str,
    token: str,
    path: str,
    specs: list[PeerSpec],
    conn: Connection,
    room_url: str | None = None,
) -> None:
    """Entry point of a worker process: run `specs` as peers, as the parent directs.
    `room_url`: the room's websocket URL on another server (benchmarks/versus.py)."""
    try:
        asyncio.run(_run_peers(url, token, path, specs, conn, room_url))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _run_peers(
    url: str,
    token: str,
    path: str,
    specs: list[PeerSpec],
    conn: Connection,
    room_url: str | None,
) -> None:
    loop = asyncio.get_running_loop()
    clients: list[RoomClient] = []
    clocks: list[tuple[int, KeystrokeClock]] = []
    subscriptions = []
    typists: list[tuple[int, float, Text, int]] = []
    for spec in specs:
        client = RoomClient(url, path, token=token)
        if room_url is not None:
            client.url = room_url
        await client.connect(timeout=60)
        clients.append(client)
        cells = client.notebook.ycells
        for cell in spec.watch_cells:
            text: Text = cells[cell]["source"]
            clock = KeystrokeClock(len(text))
            subscriptions.append(text.observe(clock))
            clocks.append((cell, clock))
        if spec.type_cell is not None:
            text = cells[spec.type_cell]["source"]
            typists.append((spec.type_cell, spec.phase, text, len(text)))
    conn.send(("ready", None))
    command, (start, keystrokes, interval, deadline) = await loop.run_in_executor(None, conn.recv)
    if command != "go":
        raise RuntimeError(f"expected 'go', got {command!r}")
    sends = await asyncio.gather(
        *(
            _type(text, base, start + phase, keystrokes, interval)
            for _, phase, text, base in typists
        )
    )
    while time.monotonic() < deadline and any(len(c.times) < keystrokes for _, c in clocks):
        await asyncio.sleep(0.01)
    report = WorkerReport(
        sends={cell: times for (cell, _, _, _), times in zip(typists, sends, strict=True)},
        arrivals=[(cell, clock.times) for cell, clock in clocks],
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
        # A late typist still yields, so that the loop reads between keystrokes.
        await asyncio.sleep(max(start + k * interval - time.monotonic(), 0))
        sends.append(time.monotonic())
        text.insert(base + k, "x")
    return sends


# -- the parent's side ---------------------------------------------------------------------


@dataclass
class TypingRun:
    peers: int
    edits: int
    typing_seconds: float  # first keystroke to last
    wall_seconds: float  # first keystroke until every watcher had every edit
    converge_seconds: float  # last keystroke until every watcher had every edit
    delivery: list[float]  # one latency per edit and watching peer
    all_peers: list[float]  # per edit: until the last watcher had it
    first_peer: list[float]  # per edit: until the first watcher had it
    server_cpu: float  # percent of one core, from "go" until the workers reported
    clients_cpu: float
    other_cpu: float  # everything else on the machine in that time
    missing: int  # deliveries that never arrived
    out_of_order: int


def run_typing(
    server: ServerProcess,
    path: str,
    groups: list[list[PeerSpec]],
    *,
    keystrokes: int,
    interval: float,
    converge_timeout: float,
    room_url: str | None = None,
) -> TypingRun:
    """Run each group of peers in a worker process; every typist types `keystrokes` times."""
    context = multiprocessing.get_context("spawn")
    processes: list[Any] = []
    conns: list[Connection] = []
    try:
        for specs in groups:
            parent, child = context.Pipe()
            process = context.Process(
                target=peer_worker,
                args=(server.url, server.token, path, specs, child, room_url),
                daemon=True,
            )
            process.start()
            processes.append(process)
            conns.append(parent)
        for conn in conns:
            _receive(conn, "ready", timeout=120)
        measured = [psutil.Process(server.process.pid)]  # type: ignore[union-attr]
        measured += [psutil.Process(process.pid) for process in processes]
        cpu_before = [_cpu_seconds(p) for p in measured]
        machine_before = psutil.cpu_times()
        wall_before = time.monotonic()
        start = wall_before + 0.5
        deadline = start + keystrokes * interval + converge_timeout
        for conn in conns:
            conn.send(("go", (start, keystrokes, interval, deadline)))
        reports = [_receive(conn, "done", timeout=deadline - start + 60) for conn in conns]
        wall = time.monotonic() - wall_before
        cpu = [_cpu_seconds(p) - before for p, before in zip(measured, cpu_before, strict=True)]
        machine = _busy_seconds(psutil.cpu_times()) - _busy_seconds(machine_before)
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
    run = _collate(reports)
    run.peers = sum(len(specs) for specs in groups)
    run.server_cpu = 100 * cpu[0] / wall
    run.clients_cpu = 100 * sum(cpu[1:]) / wall
    run.other_cpu = max(0.0, 100 * (machine - sum(cpu)) / wall)
    return run


def _collate(reports: list[WorkerReport]) -> TypingRun:
    sends: dict[int, list[float]] = {}
    for report in reports:
        sends.update(report.sends)
    first_send = min(times[0] for times in sends.values())
    last_send = max(times[-1] for times in sends.values())
    last_arrival = last_send
    delivery: list[float] = []
    latest = {cell: [-math.inf] * len(times) for cell, times in sends.items()}
    earliest = {cell: [math.inf] * len(times) for cell, times in sends.items()}
    missing = 0
    for report in reports:
        for cell, arrivals in report.arrivals:
            sent = sends[cell]
            missing += max(0, len(sent) - len(arrivals))
            last, first = latest[cell], earliest[cell]
            for k, (t_sent, t_arrived) in enumerate(zip(sent, arrivals, strict=False)):
                delivery.append(t_arrived - t_sent)
                last[k] = max(last[k], t_arrived)
                first[k] = min(first[k], t_arrived)
            if arrivals:
                last_arrival = max(last_arrival, arrivals[-1])
    return TypingRun(
        peers=0,
        edits=sum(len(times) for times in sends.values()),
        typing_seconds=last_send - first_send,
        wall_seconds=last_arrival - first_send,
        converge_seconds=last_arrival - last_send,
        delivery=delivery,
        all_peers=_latencies(sends, latest),
        first_peer=_latencies(sends, earliest),
        server_cpu=0.0,
        clients_cpu=0.0,
        other_cpu=0.0,
        missing=missing,
        out_of_order=sum(report.out_of_order for report in reports),
    )


def _latencies(sends: dict[int, list[float]], arrivals: dict[int, list[float]]) -> list[float]:
    return [
        t_arrived - t_sent
        for cell, sent in sends.items()
        for t_sent, t_arrived in zip(sent, arrivals[cell], strict=True)
        if math.isfinite(t_arrived)
    ]


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _busy_seconds(times: Any) -> float:
    """CPU seconds the whole machine spent working (Linux counts guest time in user)."""
    return float(
        times.user
        + times.system
        + getattr(times, "nice", 0.0)
        + getattr(times, "irq", 0.0)
        + getattr(times, "softirq", 0.0)
    )


def _receive(conn: Connection, expected: str, timeout: float) -> Any:
    try:
        if not conn.poll(timeout):
            raise TimeoutError(f"no {expected!r} from a peer worker within {timeout:.0f} s")
        kind, payload = conn.recv()
    except EOFError:
        raise RuntimeError(f"a peer worker exited before {expected!r}") from None
    if kind != expected:
        raise RuntimeError(f"peer worker: expected {expected!r}, got {kind!r}: {payload}")
    return payload


def split(specs: list[PeerSpec], groups: int) -> list[list[PeerSpec]]:
    """Deal peers round-robin into at most `groups` non-empty groups."""
    groups = max(1, min(groups, len(specs)))
    return [specs[i::groups] for i in range(groups)]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
