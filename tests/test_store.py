"""The update store on a real SQLite file: damaged files, unknown versions, bounded size."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from jupyter_crdt_sync.store import SCHEMA_VERSION, Store

LOG = logging.getLogger("test-store")
NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def open_store(path: Path, **kwargs: Any) -> Store:
    store = Store(str(path), LOG, **kwargs)
    store.open()
    return store


async def write_history(store: Store, path: str, edits: int) -> Doc:
    doc = Doc()
    text = doc.get("source", type=Text)
    await store.create(path, doc.client_id, doc.get_update(), NOTEBOOK, [])
    journal = store.journal(path, doc.get_update)
    doc.observe(lambda event: journal.append(event.update))
    for number in range(edits):
        text.insert(len(text), f"{number % 10}")
        if number % 500 == 0:
            await asyncio.sleep(0)
    await store.close()
    return doc


def test_history_round_trips(tmp_path: Path) -> None:
    async def scenario() -> None:
        doc = await write_history(open_store(tmp_path / "s.sqlite"), "nb.ipynb", 100)
        stored = await reopen(tmp_path / "s.sqlite").load("nb.ipynb")
        assert stored is not None
        copy = Doc()
        for update in stored.updates:
            copy.apply_update(update)
        assert str(copy.get("source", type=Text)) == str(doc.get("source", type=Text))
        assert stored.lineage == doc.client_id

    run(scenario())


def reopen(path: Path) -> Store:
    return open_store(path)


def test_unreadable_store_file_is_moved_aside(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = open_store(path)
    assert (tmp_path / "s.sqlite.corrupt").read_bytes().startswith(b"this is not")
    assert "s.sqlite.corrupt" in caplog.text
    run(write_history(store, "nb.ipynb", 10))
    assert run(reopen(path).load("nb.ipynb")) is not None


def test_store_of_an_unknown_schema_version_is_moved_aside(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as database:
        database.execute("CREATE TABLE future (x)")
        database.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = open_store(path)
    assert (tmp_path / f"s.sqlite.version-{SCHEMA_VERSION + 1}").exists()
    assert "schema version" in caplog.text
    run(write_history(store, "nb.ipynb", 10))


def test_damaged_update_moves_the_room_history_aside(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "s.sqlite"
    run(write_history(open_store(path), "nb.ipynb", 20))
    with sqlite3.connect(path) as database:
        database.execute(
            "UPDATE updates SET data = x'00ff' WHERE id = (SELECT max(id) FROM updates)"
        )
    store = reopen(path)
    assert run(store.load("nb.ipynb")) is None
    assert "nb.ipynb.corrupt" in caplog.text
    # The damaged history is kept for inspection, under another name.
    with sqlite3.connect(path) as database:
        names = {row[0] for row in database.execute("SELECT path FROM documents")}
    assert names == {"nb.ipynb.corrupt"}


def test_store_stays_a_small_multiple_of_the_document(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    doc = run(write_history(open_store(path, compact_after_updates=10_000), "nb.ipynb", 100_000))
    document_bytes = len(doc.get_update())
    store_bytes = sum(p.stat().st_size for p in tmp_path.glob("s.sqlite*"))
    print(f"100000 edits: document {document_bytes} B, store {store_bytes} B")
    # The log is squashed whenever it outweighs the document (a log of every keystroke
    # would be ~40 times the document here).
    assert store_bytes < 4 * document_bytes + 256 * 1024
    stored = run(reopen(path).load("nb.ipynb"))
    assert stored is not None and len(stored.updates) <= 10_001


def test_failed_writes_are_retried_in_order_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"

    async def scenario() -> None:
        store = open_store(path, retry_interval=0.05)
        doc = Doc()
        text = doc.get("source", type=Text)
        await store.create("nb.ipynb", doc.client_id, doc.get_update(), NOTEBOOK, [])
        journal = store.journal("nb.ipynb", doc.get_update)
        doc.observe(lambda event: journal.append(event.update))
        # The database becomes read-only: SQLite refuses every write.
        await store._run(store._connection.execute, "PRAGMA query_only = ON")  # type: ignore[union-attr]
        for char in "abcdef":
            text.insert(len(text), char)
        await asyncio.sleep(0.2)
        assert store.error is not None and "readonly" in store.error
        # Durable or not, the room was not held up.
        assert journal.durable == journal.appended
        await store._run(store._connection.execute, "PRAGMA query_only = OFF")  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        assert store.error is None
        await store.close()
        stored = await reopen(path).load("nb.ipynb")
        assert stored is not None
        copy = Doc()
        for update in stored.updates:
            copy.apply_update(update)
        assert str(copy.get("source", type=Text)) == "abcdef"

    run(scenario())


def test_checksums_catch_silent_damage(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    run(write_history(open_store(path), "nb.ipynb", 5))
    with sqlite3.connect(path) as database:
        row = database.execute("SELECT id, data FROM updates LIMIT 1").fetchone()
        damaged = bytearray(row[1])
        damaged[-1] ^= 0xFF
        database.execute("UPDATE updates SET data = ? WHERE id = ?", (bytes(damaged), row[0]))
    assert zlib.crc32(bytes(damaged)) != zlib.crc32(row[1])
    assert run(reopen(path).load("nb.ipynb")) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_random_edits_restore_exactly(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)

    async def scenario() -> None:
        store = open_store(tmp_path / "s.sqlite", compact_after_updates=50)
        doc = Doc()
        text = doc.get("source", type=Text)
        await store.create("nb.ipynb", doc.client_id, doc.get_update(), NOTEBOOK, [])
        journal = store.journal("nb.ipynb", doc.get_update)
        doc.observe(lambda event: journal.append(event.update))
        for _ in range(2000):
            content = str(text)
            if content and rng.random() < 0.3:
                start = rng.randrange(len(content))
                del text[start : start + 1]
            else:
                text.insert(rng.randrange(len(content) + 1), rng.choice("xyz"))
            if rng.random() < 0.05:
                await asyncio.sleep(0)
        await store.close()
        stored = await reopen(tmp_path / "s.sqlite").load("nb.ipynb")
        assert stored is not None
        copy = Doc()
        for update in stored.updates:
            copy.apply_update(update)
        assert str(copy.get("source", type=Text)) == str(text)

    run(scenario())
