"""What durability costs: the update store measured on a real server (issue 3).

    python benchmarks/bench_store.py [--quick]

Prints a table per section:
1. edits/s one room makes durable with 1, 10 and 50 peers typing at once, with the store
   on a file (committed before broadcast, fsync per batch) and with it in memory;
2. the store's size after long typing sessions, against the document's own size;
3. the time to open a 1000-cell room from its stored history and from the .ipynb file.

Peers type from worker processes so that the clients are not the bottleneck; every server
listens on 127.0.0.1 only and the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import table
from jupyter_crdt_sync.client import RoomClient
from tests.server_process import ServerProcess

FAST_SAVES = {"save_delay": 1.0, "save_max_delay": 5.0}


def write_notebook(path: Path, cells: int, output_bytes: int = 0) -> None:
    notebook = nbformat.v4.new_notebook()
    for index in range(cells):
        cell = nbformat.v4.new_code_cell(f"# cell {index}\nx_{index} = {index}\n")
        cell["id"] = f"cell-{index}"
        if output_bytes:
            cell["outputs"] = [nbformat.v4.new_output("stream", text="o" * output_bytes)]
        notebook.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))


# -- 1. durable edits per second ---------------------------------------------------------


def typist(url: str, token: str, peers: int, edits: int, start_at: float, cell: int) -> None:
    """A worker process: `peers` peers, each typing `edits` characters as fast as it can."""

    async def main() -> None:
        clients = [RoomClient(url, "nb.ipynb", token=token) for _ in range(peers)]
        for client in clients:
            await client.connect()
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))

        async def type_all(client: RoomClient) -> None:
            for _ in range(edits):
                client.insert_text(f"cell-{cell}", 0, "x")
                await asyncio.sleep(0)

        await asyncio.gather(*(type_all(client) for client in clients))
        # Stay until the watcher has seen everything (it ends the process).
        await asyncio.sleep(120)

    asyncio.run(main())


async def durable_rate(server: ServerProcess, peers: int, edits_each: int) -> tuple[float, float]:
    """Edits per second from the first keystroke until one watcher has them all."""
    workers = min(peers, 2)
    per_worker = [peers // workers + (1 if i < peers % workers else 0) for i in range(workers)]
    start_at = time.monotonic() + 3.0
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=typist,
            args=(server.url, server.token, count, edits_each, start_at, 0),
            daemon=True,
        )
        for count in per_worker
    ]
    for process in processes:
        process.start()
    watcher = RoomClient(server.url, "nb.ipynb", token=server.token)
    await watcher.connect()
    assert server.process is not None
    server_process = psutil.Process(server.process.pid)
    total = peers * edits_each
    base = len(watcher.source("cell-0"))
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    cpu_before = server_process.cpu_times()
    began = time.monotonic()
    await watcher.wait_for(lambda r: len(r.source("cell-0")) >= base + total, timeout=300)
    elapsed = time.monotonic() - began
    cpu_after = server_process.cpu_times()
    await watcher.disconnect()
    for process in processes:
        process.terminate()
        process.join(10)
    cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / elapsed
    return total / elapsed, cpu * 100


def bench_durable_rates(root: Path, quick: bool) -> str:
    rows = []
    edits = 100 if quick else 400
    for label, store_path in (("file (durable)", None), ("memory (off)", ":memory:")):
        for peers in (1, 10) if quick else (1, 10, 50):
            case = root / f"rate-{peers}-{'mem' if store_path else 'file'}"
            write_notebook(case / "nb.ipynb", 1)
            config = {"CRDTSync": dict(FAST_SAVES)}
            if store_path:
                config["CRDTSync"]["store_path"] = store_path
            with ServerProcess(case, config=config) as server:
                each = max(20, edits * 10 // max(peers, 10))
                rate, cpu = asyncio.run(durable_rate(server, peers, each))
            rows.append([label, str(peers), str(peers * each), f"{rate:,.0f}", f"{cpu:.0f}%"])
    return table(
        ["store", "peers typing", "edits", "edits/s seen by a peer", "server CPU"], rows, 1
    )


# -- 2. store size after long sessions ---------------------------------------------------


async def long_session(server: ServerProcess, keystrokes: int) -> tuple[int, int]:
    client = RoomClient(server.url, "nb.ipynb", token=server.token)
    await client.connect()
    for number in range(keystrokes):
        cell = f"cell-{number % 100}"
        if number % 7 == 6:
            client.delete_text(cell, 0, 1)
        else:
            client.insert_text(cell, 0, "k")
        if number % 200 == 0:
            await asyncio.sleep(0.005)
    await client.wait_for(lambda r: True)
    await asyncio.sleep(2.0)
    room = server.get_json("api/crdtsync/status")["rooms"][0]
    await client.disconnect()
    return room["doc_bytes"], room["store"]["bytes"]


def bench_store_size(root: Path, quick: bool) -> str:
    rows = []
    for keystrokes in (2_000, 20_000) if quick else (2_000, 20_000, 100_000):
        case = root / f"size-{keystrokes}"
        write_notebook(case / "nb.ipynb", 100)
        with ServerProcess(case, config={"CRDTSync": FAST_SAVES}) as server:
            doc_bytes, store_bytes = asyncio.run(long_session(server, keystrokes))
            files = sum(p.stat().st_size for p in (server.data_dir / "crdtsync").glob("store*"))
        rows.append(
            [
                f"{keystrokes:,}",
                f"{doc_bytes / 1024:,.0f} KiB",
                f"{store_bytes / 1024:,.0f} KiB",
                f"{files / 1024:,.0f} KiB",
                f"{files / doc_bytes:.1f}x",
            ]
        )
    headers = ["keystrokes (100 cells)", "document", "room's rows", "store files", "files/doc"]
    return table(headers, rows, 1)


# -- 3. opening a room from the store or from the file -----------------------------------


async def open_times(server: ServerProcess, repeats: int) -> tuple[list[float], list[float]]:
    from_file, from_store = [], []
    for _ in range(repeats):
        client = RoomClient(server.url, "nb.ipynb", token=server.token)
        began = time.monotonic()
        await client.connect()
        elapsed = time.monotonic() - began
        await client.disconnect()
        # The first open of the test reads the file; later ones resume the stored history.
        (from_file if not from_file else from_store).append(elapsed)
        while server.get_json("api/crdtsync/status")["rooms"]:
            await asyncio.sleep(0.05)
    return from_file, from_store


def bench_open(root: Path, quick: bool) -> str:
    rows = []
    for output_bytes in (0, 10_000):
        case = root / f"open-{output_bytes}"
        write_notebook(case / "nb.ipynb", 1000, output_bytes)
        config = {"CRDTSync": {**FAST_SAVES, "eviction_delay": 0.2}}
        with ServerProcess(case, config=config) as server:
            from_file, from_store = asyncio.run(open_times(server, 3 if quick else 6))
        rows.append(
            [
                "1000 cells" + (f", {output_bytes // 1000} kB output each" if output_bytes else ""),
                f"{from_file[0] * 1000:.0f} ms",
                f"{statistics.median(from_store) * 1000:.0f} ms",
            ]
        )
    return table(["notebook", "open from the file", "open from the store (median)"], rows, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs")
    parser.add_argument(
        "--sections", default="rates,size,open", help="comma-separated: rates,size,open"
    )
    options = parser.parse_args(argv)
    sections = set(options.sections.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        root = Path(tmp)
        if "rates" in sections:
            print("## Durable edits per second, one room\n")
            print(bench_durable_rates(root, options.quick), "\n", flush=True)
        if "size" in sections:
            print("## Store size after long typing sessions\n")
            print(bench_store_size(root, options.quick), "\n", flush=True)
        if "open" in sections:
            print("## Opening a room: from the file or from the stored history\n")
            print(bench_open(root, options.quick), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
