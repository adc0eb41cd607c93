#!/usr/bin/env python
"""Benchmarks of the kernel actor: first output, output throughput, typing during a flood.

Starts a real `jupyter server` with the extension on 127.0.0.1 (tests/server_process.py)
and a real ipykernel, drives it with `jupyter_crdt_sync.client.RoomClient` peers and
prints markdown tables (progress goes to stderr).

    python benchmarks/bench_kernel.py              # everything, about 2 minutes
    python benchmarks/bench_kernel.py --quick      # smoke run, under a minute
    python benchmarks/bench_kernel.py --sections first_output,flood

Peers other than the ones measured are *frame readers*: websocket peers that read and
count every frame the server sends but do not apply it, so the server does all the work
of a full peer while the benchmark process stays light. The cells note when they started
and stopped emitting (the kernel's wall clock is the benchmark's), to tell the kernel's
speed from the actor's; ipykernel sends one IOPub message per flushed print or display.
See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from pycrdt import Text  # noqa: E402
from tornado.httpclient import HTTPRequest  # noqa: E402
from tornado.websocket import websocket_connect  # noqa: E402

from benchmarks.report import table  # noqa: E402
from jupyter_crdt_sync.client import RoomClient, room_url  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

SECTIONS = ("first_output", "throughput", "flood", "notebook")
SERVER_CONFIG = {"CRDTSync": {"eviction_delay": 0.5}}
TIMEOUT = 600.0


@dataclass(frozen=True)
class Options:
    sections: tuple[str, ...]
    repeats: int
    peers: int
    stream_messages: int
    display_messages: int
    flood_lines: int
    flood_runs: int
    typing_interval: float
    baseline_seconds: float


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def write_notebook(path: Path, sources: list[str]) -> str:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook["metadata"]["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, str(path))
    return path.name


# -- peers that only read ------------------------------------------------------------------


@dataclass
class FrameReader:
    """A websocket peer that receives every frame and applies none."""

    url: str
    token: str
    frames: int = 0
    bytes: int = 0
    _task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        request = HTTPRequest(self.url, headers={"Authorization": f"token {self.token}"})
        self._connection = await websocket_connect(request, max_message_size=1 << 30)
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while (frame := await self._connection.read_message()) is not None:
            self.frames += 1
            self.bytes += len(frame)

    async def close(self) -> None:
        self._connection.close()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)


async def connect_peer(server: ServerProcess, path: str) -> RoomClient:
    client = RoomClient(server.url, path, token=server.token)
    await client.connect(timeout=120)
    return client


async def open_readers(server: ServerProcess, path: str, count: int) -> list[FrameReader]:
    readers = [FrameReader(room_url(server.url, path), server.token) for _ in range(count)]
    await asyncio.gather(*(reader.open() for reader in readers))
    return readers


# -- 1. first output -----------------------------------------------------------------------


async def _first_output(server: ServerProcess, path: str, repeats: int) -> list[tuple[float, ...]]:
    watcher = await connect_peer(server, path)
    requester = RoomClient(server.url, path, token=server.token)  # HTTP only, never joins
    samples = []
    for _ in range(repeats + 1):
        started = time.monotonic()
        (msg_id,) = await requester.execute("cell-0", timeout=TIMEOUT)
        accepted = time.monotonic()
        await watcher.wait_for(
            lambda r, m=msg_id: r.execution("cell-0")["msg_id"] == m and bool(r.outputs("cell-0")),
            timeout=TIMEOUT,
        )
        shown = time.monotonic()
        await watcher.wait_for_execution("cell-0", msg_id, TIMEOUT)
        done = time.monotonic()
        samples.append((accepted - started, shown - started, done - started))
    await watcher.disconnect()
    return samples


def bench_first_output(root: Path, options: Options) -> str:
    path = write_notebook(root / "first-output.ipynb", ["print('hello')"])
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        log(f"first output: 1 cold + {options.repeats} warm requests")
        samples = asyncio.run(_first_output(server, path, options.repeats))
    cold, warm = samples[0], samples[1:]
    rows = [
        [
            "cold (starts the kernel)",
            "1",
            ms(cold[0]),
            ms(cold[1]),
            ms(cold[1]),
            ms(cold[1]),
            ms(cold[2]),
        ],
        [
            "warm",
            str(len(warm)),
            ms(statistics.median(s[0] for s in warm)),
            ms(statistics.median(s[1] for s in warm)),
            ms(percentile([s[1] for s in warm], 95)),
            ms(percentile([s[1] for s in warm], 99)),
            ms(statistics.median(s[2] for s in warm)),
        ],
    ]
    headers = [
        "request",
        "runs",
        "202 ms",
        "first output p50 ms",
        "p95 ms",
        "p99 ms",
        "idle at peer p50 ms",
    ]
    title = "### Request to first output seen by another peer (`print('hello')`)"
    return f"{title}\n\n{table(headers, rows, text_columns=1)}"


# -- 2. output throughput ------------------------------------------------------------------


async def _throughput(server: ServerProcess, path: str, options: Options) -> list[list[str]]:
    watcher = await connect_peer(server, path)
    readers = await open_readers(server, path, options.peers - 1)
    requester = RoomClient(server.url, path, token=server.token)
    (warm,) = await requester.execute("cell-0", timeout=TIMEOUT)
    await watcher.wait_for_execution("cell-0", warm, TIMEOUT)
    server_process = psutil.Process(server.process.pid)  # type: ignore[union-attr]
    rows = []
    runs = (
        ("cell-1", "stream (print, flush=True)", options.stream_messages),
        ("cell-2", "display_data (display)", options.display_messages),
    )
    for cell_id, kind, messages in runs:
        log(f"throughput: {kind}")
        frames_before = [reader.frames for reader in readers]
        bytes_before = [reader.bytes for reader in readers]
        cpu_before = sum(server_process.cpu_times()[:2])
        started = time.time()
        (msg_id,) = await requester.execute(cell_id, timeout=TIMEOUT)
        result = await watcher.wait_for_execution(cell_id, msg_id, TIMEOUT)
        done = time.time()
        cpu = sum(server_process.cpu_times()[:2]) - cpu_before
        assert result.status == "ok", result
        # When the kernel started and finished emitting, by its own (same) wall clock.
        (timing_id,) = await requester.execute("cell-3", timeout=TIMEOUT)
        timing = await watcher.wait_for_execution("cell-3", timing_id, TIMEOUT)
        kernel_start, kernel_end = map(float, timing.stdout.split())
        await asyncio.sleep(0.5)  # the readers drain their sockets
        kernel_seconds = kernel_end - kernel_start
        actor_seconds = done - kernel_start
        frames = statistics.median(
            r.frames - f for r, f in zip(readers, frames_before, strict=True)
        )
        received = statistics.median(
            r.bytes - b for r, b in zip(readers, bytes_before, strict=True)
        )
        rows.append(
            [
                kind,
                str(messages),
                f"{messages / kernel_seconds:.0f}",
                f"{messages / actor_seconds:.0f}",
                ms(done - kernel_end),
                ms(done - started),
                f"{frames:.0f}",
                f"{received / 2**20:.2f}",
                f"{100 * cpu / (done - started):.0f}",
            ]
        )
    for reader in readers:
        await reader.close()
    await watcher.disconnect()
    return rows


def bench_throughput(root: Path, options: Options) -> str:
    path = write_notebook(
        root / "throughput.ipynb",
        [
            "print('warm')",
            "import time\n_start = time.time()\n"
            f"for i in range({options.stream_messages}):\n    print(i, flush=True)\n"
            "_end = time.time()",
            "from IPython.display import display\n_start = time.time()\n"
            f"for i in range({options.display_messages}):\n    display(i)\n"
            "_end = time.time()",
            "print(_start, _end)",
        ],
    )
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        rows = asyncio.run(_throughput(server, path, options))
    headers = [
        "IOPub messages",
        "count",
        "kernel msg/s",
        "into the room msg/s",
        "kernel done to peer idle ms",
        "request to idle ms",
        "frames per peer",
        "MiB per peer",
        "server CPU %",
    ]
    title = f"### Output throughput into one room with {options.peers} peers"
    return f"{title}\n\n{table(headers, rows, text_columns=1)}"


# -- 3. typing during an output flood ------------------------------------------------------


@dataclass
class Typing:
    sent: dict[int, float] = field(default_factory=dict)
    arrived: dict[int, float] = field(default_factory=dict)

    def latencies(self) -> list[float]:
        return [self.arrived[k] - self.sent[k] for k in self.sent if k in self.arrived]


async def _type_while(
    typist: RoomClient, watcher: RoomClient, busy: Any, interval: float
) -> Typing:
    """Type one character every `interval` seconds into cell-1 while `busy()`; when each
    keystroke reached the watcher."""
    typing = Typing()
    source: Text = watcher._ycell("cell-1")["source"]

    def on_change(event: Any) -> None:
        now = time.monotonic()
        length = len(str(source))
        for count in range(length, 0, -1):
            if count in typing.arrived:
                break
            if count in typing.sent:
                typing.arrived[count] = now

    subscription = source.observe(on_change)
    while busy():
        typist.insert_text("cell-1", len(typist.source("cell-1")), "x")
        typing.sent[len(typist.source("cell-1"))] = time.monotonic()
        await asyncio.sleep(interval)
    await watcher.wait_for(lambda _: len(typing.arrived) == len(typing.sent), timeout=60)
    source.unobserve(subscription)
    return typing


async def _flood(server: ServerProcess, path: str, options: Options) -> list[list[str]]:
    runner = await connect_peer(server, path)
    typist = await connect_peer(server, path)
    watcher = await connect_peer(server, path)
    readers = await open_readers(server, path, max(0, options.peers - 3))
    (warm,) = await runner.execute("cell-2", timeout=TIMEOUT)
    await runner.wait_for_execution("cell-2", warm, TIMEOUT)
    rows = []

    log(f"flood: typing for {options.baseline_seconds} s, kernel idle")
    until = time.monotonic() + options.baseline_seconds
    idle = await _type_while(
        typist, watcher, lambda: time.monotonic() < until, options.typing_interval
    )
    rows.append(["kernel idle", str(len(idle.sent)), *_latency_columns(idle), "", ""])

    flood = Typing()
    durations = []
    for run in range(options.flood_runs):
        log(f"flood {run + 1}/{options.flood_runs}: typing while a cell prints lines")
        started = time.monotonic()
        (msg_id,) = await runner.execute("cell-0", timeout=TIMEOUT)

        def flooding(m: str = msg_id) -> bool:
            execution = runner.execution("cell-0")
            return execution["msg_id"] != m or execution["state"] != "idle"

        typed = await _type_while(typist, watcher, flooding, options.typing_interval)
        durations.append(time.monotonic() - started)
        result = await runner.wait_for_execution("cell-0", msg_id, TIMEOUT)
        assert result.stdout.count("\n") == options.flood_lines, "the flood's output is incomplete"
        # Keystroke keys are text lengths, which only grow: runs never collide.
        flood.sent.update(typed.sent)
        flood.arrived.update(typed.arrived)
    rows.append(
        [
            f"{options.flood_lines:,} lines printed ({options.flood_runs} runs)",
            str(len(flood.sent)),
            *_latency_columns(flood),
            f"{statistics.mean(durations):.1f}",
            f"{len(result.stdout.encode()) / 2**20:.2f}",
        ]
    )
    for reader in readers:
        await reader.close()
    for client in (runner, typist, watcher):
        await client.disconnect()
    return rows


def _latency_columns(typing: Typing) -> list[str]:
    latencies = typing.latencies()
    return [ms(percentile(latencies, p)) for p in (50, 95, 99)] + [ms(max(latencies))]


def bench_flood(root: Path, options: Options) -> str:
    path = write_notebook(
        root / "flood.ipynb",
        [f"for i in range({options.flood_lines}):\n    print(i)", "", "print('warm')"],
    )
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        rows = asyncio.run(_flood(server, path, options))
    headers = [
        "while",
        "keystrokes",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "flood s (mean)",
        "output MiB",
    ]
    title = (
        f"### Keystroke propagation during an output flood: {options.peers} peers, "
        f"a keystroke every {options.typing_interval * 1000:g} ms"
    )
    return f"{title}\n\n{table(headers, rows, text_columns=1)}"


# -- 4. a 100-cell notebook against nbclient on the same kernel ----------------------------

NOTEBOOK_CELLS = 100
WINDOWS = 10


def hundred_cells() -> list[str]:
    """A notebook of small cells of the usual kinds: assignments, prints, results, displays."""
    kinds = [
        "x{i} = {i} * 2",
        "print('cell {i}')",
        "{i} ** 2",
        "from IPython.display import display\ndisplay({{'text/plain': 'shown {i}'}}, raw=True)",
    ]
    return [kinds[i % len(kinds)].format(i=i) for i in range(NOTEBOOK_CELLS)]


async def _seen_by_all(windows: list[RoomClient], cell_id: str, msg_id: str) -> list[float]:
    """When each window saw the first output of the request (monotonic times)."""

    async def one(window: RoomClient) -> float:
        await window.wait_for(
            lambda r: r.execution(cell_id)["msg_id"] == msg_id and bool(r.outputs(cell_id)),
            timeout=TIMEOUT,
        )
        return time.monotonic()

    return list(await asyncio.gather(*(one(window) for window in windows)))


async def _notebook(server: ServerProcess, path: str, runs: int) -> dict[str, list[float]]:
    from jupyter_client.asynchronous import AsyncKernelClient
    from nbclient import NotebookClient

    # Two windows that replicate everything (their first outputs are timed), the others
    # frame readers, so that the benchmark process does not compete with the server and
    # the kernel for the two cores more than a browser elsewhere would.
    windows = [await connect_peer(server, path) for _ in range(2)]
    readers = await open_readers(server, path, WINDOWS - len(windows))
    requester = RoomClient(server.url, path, token=server.token)  # HTTP only
    ids = [f"cell-{i}" for i in range(NOTEBOOK_CELLS)]

    async def through_actor() -> float:
        started = time.monotonic()
        msg_ids = await requester.execute(ids, timeout=TIMEOUT)
        await asyncio.gather(
            *(w.wait_for_execution(ids[-1], msg_ids[-1], TIMEOUT) for w in windows)
        )
        return time.monotonic() - started

    # Warm: the kernel starts, the imports are done.
    await through_actor()
    status = server.get_json("api/crdtsync/status")
    kernel_id = next(r["kernel"]["id"] for r in status["rooms"] if r["path"] == path)
    kc = AsyncKernelClient(connection_file=str(server.runtime_dir / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    await kc.wait_for_ready(timeout=TIMEOUT)
    notebook = nbformat.read(str(server.root_dir / path), as_version=4)
    client = NotebookClient(notebook, timeout=int(TIMEOUT), kernel_name="python3")
    client.kc = kc

    async def through_nbclient() -> float:
        started = time.monotonic()
        for index, cell in enumerate(notebook.cells):
            await client.async_execute_cell(cell, index)
        return time.monotonic() - started

    times: dict[str, list[float]] = {"actor": [], "nbclient": [], "first": [], "first_max": []}
    for run in range(runs):
        # Alternate which goes first, so that neither always meets a warmer machine.
        order = (
            (through_actor, through_nbclient) if run % 2 == 0 else (through_nbclient, through_actor)
        )
        for measure in order:
            elapsed = await measure()
            times["actor" if measure is through_actor else "nbclient"].append(elapsed)
        # First output in every window: one print, asked for alone.
        started = time.monotonic()
        (msg_id,) = await requester.execute("cell-1", timeout=TIMEOUT)
        seen = await _seen_by_all(windows, "cell-1", msg_id)
        times["first"].extend(t - started for t in seen)
        times["first_max"].append(max(seen) - started)
        await windows[0].wait_for_execution("cell-1", msg_id, TIMEOUT)
    kc.stop_channels()
    for window in windows:
        await window.disconnect()
    for reader in readers:
        await reader.close()
    return times


def bench_notebook(root: Path, options: Options) -> str:
    path = write_notebook(root / "hundred.ipynb", hundred_cells())
    runs = 3 if options.repeats < 50 else 10
    with ServerProcess(root, config=SERVER_CONFIG) as server:
        log(f"notebook: {NOTEBOOK_CELLS} cells, {runs} runs each way, {WINDOWS} windows")
        times = asyncio.run(_notebook(server, path, runs))
    actor, theirs = statistics.median(times["actor"]), statistics.median(times["nbclient"])
    rows = [
        [
            f"{NOTEBOOK_CELLS} cells, run all",
            str(runs),
            ms(actor),
            ms(theirs),
            f"{actor / theirs:.2f}",
            ms(statistics.median(times["first"])),
            ms(percentile(times["first"], 95)),
            ms(statistics.median(times["first_max"])),
        ]
    ]
    headers = [
        "notebook",
        "runs",
        "actor ms (p50)",
        "nbclient ms (p50)",
        "actor / nbclient",
        "first output per window p50 ms",
        "p95 ms",
        "all windows p50 ms",
    ]
    title = (
        f"### A {NOTEBOOK_CELLS}-cell notebook through the actor ({WINDOWS} windows: 2 "
        "replicas timed, the rest frame readers) and through nbclient, on the same kernel"
    )
    return f"{title}\n\n{table(headers, rows, text_columns=1)}"


# -- main ----------------------------------------------------------------------------------


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from {', '.join(SECTIONS)} (default: all)",
    )
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return Options(
        sections=sections,
        repeats=10 if args.quick else 50,
        peers=10,
        stream_messages=2_000 if args.quick else 20_000,
        display_messages=500 if args.quick else 2_000,
        flood_lines=100_000,
        flood_runs=2 if args.quick else 8,
        typing_interval=0.01,
        baseline_seconds=1.0 if args.quick else 3.0,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    benches = {
        "first_output": bench_first_output,
        "throughput": bench_throughput,
        "flood": bench_flood,
        "notebook": bench_notebook,
    }
    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        # Room histories and kernels' files stay in the temporary directory.
        os.environ["JUPYTER_DATA_DIR"] = str(Path(tmp) / "data")
        print(
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}\n"
        )
        for section in options.sections:
            print(benches[section](root, options) + "\n", flush=True)
    print(json.dumps({"sections": list(options.sections)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
