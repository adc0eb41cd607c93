#!/usr/bin/env python
"""jupyter-crdt-sync and jupyter-collaboration side by side, in one run, as ratios.

    python benchmarks/bench_versus.py            # everything, several minutes
    python benchmarks/bench_versus.py --quick    # CI smoke run: exit 1 on a lost edit
    python benchmarks/bench_versus.py --sections typing,join,memory,big

Absolute times on a shared 2-core machine drift by 1.5-2x between runs; a ratio of two
figures taken in the same run, on the same machine, by the same clients, does not. Every
scenario runs against both servers (benchmarks/versus.py: jupyter-collaboration pinned, in
a virtual environment of its own, made at the first run), one after the other, with the
peers of bench_rooms.py (`RoomClient`s in worker processes, benchmarks/typing_peers.py).

- typing: the large-notebook test of issue 13: a 10 MB notebook (1000 cells, 10 kB of
  output each), one typist and one watcher, a keystroke every 20 ms; at the same time the
  same in a 10-cell notebook in another room. Keystroke p99 and max in both rooms. Ours
  writes the file back while they type (every `save_max_delay`); jupyter-collaboration
  writes a room back only once it is quiet.
- join: connect until in sync, for a closed room (a fresh copy: loaded from the file) and
  an open one (another peer holds it), at 10, 1000 and 1000 cells with 10 kB outputs.
- memory: server RSS with N 100-cell rooms open (one peer each), per room; then after the
  peers left and the rooms were evicted.
- big: a notebook of 100 MB (1000 cells, 100 kB output each): open, type 50 keys, save;
  the times and the server's peak RSS (VmHWM) against the file's size.

Tables (markdown) on stdout, progress on stderr; docs/performance.md holds the last run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)

import psutil  # noqa: E402

from benchmarks.bench_rooms import describe_checkout, log, mib, ms, write_notebook  # noqa: E402
from benchmarks.report import table  # noqa: E402
from benchmarks.typing_peers import PeerSpec, TypingRun, percentile, run_typing  # noqa: E402
from benchmarks.versus import (  # noqa: E402
    Target,
    collaboration_config,
    ours,
    peak_rss,
    theirs,
)
from tests.server_process import ServerProcess  # noqa: E402

SECTIONS = ("typing", "join", "memory", "big")
EVICTION = 0.5


def config_for(target: Target, root: Path) -> dict[str, dict[str, Any]]:
    if target.python is None:
        store = str(root.parent / f"{root.name}-store.sqlite")
        return {"CRDTSync": {"eviction_delay": EVICTION, "store_path": store}}
    return collaboration_config(EVICTION, root.parent / f"{root.name}-ystore.db")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


# -- typing in a large notebook, and in another room meanwhile ----------------------------


def _typing(
    target: Target, root: Path, keystrokes: int, problems: list[str]
) -> tuple[TypingRun, TypingRun]:
    big = write_notebook(root / "big.ipynb", 1000, outputs=True)
    small = write_notebook(root / "small.ipynb", 10)
    with (
        target.server(root, config_for(target, root)) as server,
        _Held(target, server, [big, small]),
    ):
        # Both rooms are open before anyone types: opening the 10 MB notebook is not
        # what is measured here (the join section is).
        runs: dict[str, TypingRun] = {}

        def run(path: Path) -> None:
            name = path.name
            runs[name] = run_typing(
                server,
                name,
                [[PeerSpec(0, ())], [PeerSpec(None, (0,))]],
                keystrokes=keystrokes,
                interval=0.02,
                converge_timeout=30,
                room_url=target.room_url(server, name),
            )

        threads = [threading.Thread(target=run, args=(p,)) for p in (big, small)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for name, result in runs.items():
        if result.missing or result.out_of_order:
            problems.append(f"{target.name}, {name}: {result.missing} keystrokes lost")
    return runs["big.ipynb"], runs["small.ipynb"]


class _Held:
    """Peers that hold rooms open (on a thread of their own) while a block runs."""

    def __init__(self, target: Target, server: ServerProcess, paths: list[Path]) -> None:
        self._target, self._server, self._paths = target, server, paths
        self._ready = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    async def _hold(self) -> None:
        clients = await _open_rooms(self._target, self._server, [p.name for p in self._paths])
        self._ready.set()
        while not self._done.is_set():
            await asyncio.sleep(0.05)
        await _close_all(clients)

    def __enter__(self) -> _Held:
        self._thread.start()
        if not self._ready.wait(600):
            raise TimeoutError("the rooms did not open")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join(60)


def bench_typing(targets: list[Target], root: Path, quick: bool, problems: list[str]) -> str:
    keystrokes = 100 if quick else 1000
    results = {}
    for target in targets:
        log(f"typing: {target.name}, {keystrokes} keystrokes in two rooms")
        results[target.name] = _typing(target, root / target.name / "typing", keystrokes, problems)
    rows = []
    for index, room in enumerate(("the 10 MB room", "another room")):
        for stat, pick in (("p99", lambda r: percentile(r.all_peers, 99)), ("max", None)):
            values = []
            for target in targets:
                run = results[target.name][index]
                values.append(pick(run) if pick else max(run.all_peers, default=float("nan")))
            rows.append([f"keystroke {stat}, {room}", *(ms(v) for v in values), ratio(*values)])
    return _table("Typing while a 10 MB notebook is open", targets, rows, "ms")


# -- joins ---------------------------------------------------------------------------------


async def _join(target: Target, server: ServerProcess, path: str) -> float:
    client = target.client(server, path)
    started = time.perf_counter()
    await client.connect(timeout=120)
    elapsed = time.perf_counter() - started
    await client.disconnect()
    return elapsed


async def _joins(target: Target, server: ServerProcess, paths: list[str]) -> tuple[float, float]:
    closed = [await _join(target, server, path) for path in paths]
    holder = target.client(server, paths[0])
    await holder.connect(timeout=120)
    opened = [await _join(target, server, paths[0]) for _ in paths]
    await holder.disconnect()
    return statistics.median(closed), statistics.median(opened)


def bench_join(targets: list[Target], root: Path, quick: bool, problems: list[str]) -> str:
    runs = 3 if quick else 5
    sizes = [(10, False), (1000, False), (1000, True)]
    results: dict[str, dict[tuple[int, bool], tuple[float, float]]] = {}
    for target in targets:
        where = root / target.name / "join"
        where.mkdir(parents=True, exist_ok=True)
        with target.server(where, config_for(target, where)) as server:
            results[target.name] = {}
            for cells, outputs in sizes:
                log(f"join: {target.name}, {cells} cells{' with outputs' if outputs else ''}")
                source = write_notebook(where / f"{cells}-{outputs}.ipynb", cells, outputs=outputs)
                paths = []
                for run in range(runs):
                    copy = source.with_name(f"{cells}-{outputs}-{run}.ipynb")
                    shutil.copyfile(source, copy)
                    paths.append(copy.name)
                results[target.name][(cells, outputs)] = asyncio.run(_joins(target, server, paths))
    rows = []
    for cells, outputs in sizes:
        label = f"{cells} cells" + (", 10 kB outputs" if outputs else "")
        for index, kind in enumerate(("closed", "open")):
            values = [results[t.name][(cells, outputs)][index] for t in targets]
            rows.append([f"join {kind} room, {label}", *(ms(v) for v in values), ratio(*values)])
    return _table(f"Join: connect until in sync (median of {runs})", targets, rows, "ms")


# -- memory --------------------------------------------------------------------------------


async def _open_rooms(target: Target, server: ServerProcess, paths: list[str]) -> list[Any]:
    clients = []
    for path in paths:
        client = target.client(server, path)
        await client.connect(timeout=120)
        clients.append(client)
    return clients


def bench_memory(targets: list[Target], root: Path, quick: bool, problems: list[str]) -> str:
    count = 20 if quick else 100
    results = {}
    for target in targets:
        where = root / target.name / "memory"
        paths = [write_notebook(where / f"m{i}.ipynb", 100, seed=i).name for i in range(count)]
        with target.server(where, config_for(target, where)) as server:
            process = psutil.Process(server.process.pid)  # type: ignore[union-attr]
            # One room opened and evicted first: what every server loads once.
            asyncio.run(_open_and_close(target, server, paths[:1]))
            time.sleep(EVICTION + 3)
            baseline = process.memory_info().rss
            log(f"memory: {target.name}, {count} rooms")
            loop = asyncio.new_event_loop()
            clients = loop.run_until_complete(_open_rooms(target, server, paths))
            time.sleep(1)
            opened = process.memory_info().rss
            loop.run_until_complete(_close_all(clients))
            loop.close()
            time.sleep(EVICTION + 5)
            evicted = process.memory_info().rss
        results[target.name] = ((opened - baseline) / count, evicted - baseline)
    rows = [
        ["RSS per open 100-cell room, MiB"]
        + [mib(results[t.name][0]) for t in targets]
        + [ratio(*(results[t.name][0] for t in targets))],
        [f"RSS after {count} rooms evicted, above baseline, MiB"]
        + [mib(results[t.name][1]) for t in targets]
        + [ratio(*(results[t.name][1] for t in targets))],
    ]
    return _table(f"Memory: {count} rooms of 100 cells, one peer each", targets, rows, "MiB")


async def _open_and_close(target: Target, server: ServerProcess, paths: list[str]) -> None:
    await _close_all(await _open_rooms(target, server, paths))


async def _close_all(clients: list[Any]) -> None:
    for client in clients:
        await client.disconnect()


# -- a 100 MB notebook ---------------------------------------------------------------------


async def _big(target: Target, server: ServerProcess, path: Path) -> tuple[float, float]:
    client = target.client(server, path.name)
    started = time.perf_counter()
    await client.connect(timeout=600)
    opened = time.perf_counter() - started
    text = client.notebook.ycells[0]["source"]
    for _ in range(50):
        text.insert(len(text), "x")
        await asyncio.sleep(0.02)
    started = time.perf_counter()
    await asyncio.to_thread(target.save, server, path.name)
    # jupyter-collaboration writes by itself once the room is quiet: until the file has
    # the 50 keys (the last line of the cell's source, as nbformat splits it).
    while '"' + "x" * 50 + '"' not in await asyncio.to_thread(path.read_text):
        if time.perf_counter() - started > 300:
            raise TimeoutError(f"{path.name} was not written within 300 s")
        await asyncio.sleep(0.2)
    saved = time.perf_counter() - started
    await client.disconnect()
    return opened, saved


def bench_big(targets: list[Target], root: Path, quick: bool, problems: list[str]) -> str:
    output_kb = 20 if quick else 100
    results = {}
    size = 0
    for target in targets:
        where = root / target.name / "big"
        huge = where / "huge.ipynb"
        path = write_notebook(huge, 1000, outputs=True, output_bytes=output_kb * 750)
        size = path.stat().st_size
        log(f"big: {target.name}, {mib(size)} MiB")
        with target.server(where, config_for(target, where)) as server:
            opened, saved = asyncio.run(_big(target, server, path))
            peak = peak_rss(server.process.pid)  # type: ignore[union-attr]
        results[target.name] = (opened, saved, peak)
    rows = [
        ["open (join) s"] + [f"{results[t.name][0]:.1f}" for t in targets],
        ["type 50 keys, then written s"] + [f"{results[t.name][1]:.1f}" for t in targets],
        ["server peak RSS MiB"] + [mib(results[t.name][2]) for t in targets],
        ["peak RSS ÷ file size"] + [f"{results[t.name][2] / size:.1f}" for t in targets],
    ]
    for row, index in zip(rows, (0, 1, 2, 2), strict=True):
        row.append(ratio(*(results[t.name][index] for t in targets)))
    return _table(f"A {mib(size)} MiB notebook: open, type, save", targets, rows, "")


def _table(title: str, targets: list[Target], rows: list[list[str]], unit: str) -> str:
    headers = ["", *(t.name for t in targets), "ours ÷ theirs"]
    return f"### {title}\n\n{table(headers, rows, text_columns=1)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; exit 1 on a lost edit")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    options = parser.parse_args(argv)
    sections = [s for s in options.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    targets = [ours(), theirs(log)]
    problems: list[str] = []
    benches = {"typing": bench_typing, "join": bench_join, "memory": bench_memory, "big": bench_big}
    print(f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {describe_checkout()}\n")
    with tempfile.TemporaryDirectory(prefix="bench-versus-") as tmp:
        for section in sections:
            print(benches[section](targets, Path(tmp), options.quick, problems), "\n", flush=True)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
