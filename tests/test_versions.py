"""Versions cut into shared blobs, compared and thinned (versions.py), and kept in a real
SQLite store (history_store.py through store.py): exact content, sharing, thinning."""

from __future__ import annotations

import copy
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import nbformat

from jupyter_crdt_sync.history_store import VersionRequest
from jupyter_crdt_sync.store import Store
from jupyter_crdt_sync.versions import (
    RetentionPolicy,
    cells_changed,
    decode,
    decode_entries,
    diff,
    encode,
    to_thin,
)

HOUR, DAY = 3600.0, 86400.0


def notebook(cells: int) -> tuple[dict[str, Any], list[str]]:
    content = nbformat.v4.new_notebook(metadata={"custom": {"a": 1}})
    for index in range(cells):
        cell = nbformat.v4.new_code_cell(f"x = {index}", id=f"c{index}")
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=f"{index}\n")]
        content["cells"].append(cell)
    plain = nbformat.from_dict(content)
    data: dict[str, Any] = copy.deepcopy(dict(plain))
    return data, [f"c{index}" for index in range(cells)]


def roundtrip(content: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    encoded = encode(content, ids)
    chunks = decode_entries(encoded.blobs[name] for name in encoded.chunks)
    return decode(encoded.blobs[encoded.meta], chunks, encoded.blobs)


def test_encoding_is_exact_and_one_edit_changes_one_chunk():
    content, ids = notebook(1000)
    assert roundtrip(content, ids) == content
    before = encode(content, ids)
    content["cells"][500]["source"] = "edited"
    after = encode(content, ids)
    assert len(before.chunks) > 10
    assert len(set(after.chunks) - set(before.chunks)) == 1
    assert len(set(after.blobs) - set(before.blobs)) == 2  # the cell, its chunk
    assert cells_changed(before.entries, after.entries) == 1
    # An inserted cell also changes only the chunk it lands in.
    content["cells"].insert(10, nbformat.v4.new_markdown_cell("new", id="new"))
    inserted = encode(content, [*ids[:10], "new", *ids[10:]])
    assert len(set(inserted.chunks) - set(after.chunks)) == 1


def test_diff_names_added_removed_changed_and_moved_cells():
    old, ids = notebook(5)
    new = copy.deepcopy(old)
    new_ids = list(ids)
    new["cells"][1]["source"] = "x = 'one'"
    new["cells"][2]["outputs"] = []
    moved = new["cells"].pop(4)
    new["cells"].insert(0, moved)
    new_ids.insert(0, new_ids.pop(4))
    del new["cells"][4]  # c3
    del new_ids[4]
    result = diff(old, ids, new, new_ids)
    changes = {cell["id"]: cell for cell in result["cells"]}
    assert changes["c4"]["change"] == "moved" and changes["c4"]["moved"]
    assert changes["c1"]["change"] == "changed" and "+x = 'one'" in changes["c1"]["source_diff"]
    assert changes["c2"]["outputs_changed"] and changes["c2"]["source_diff"] is None
    assert changes["c3"]["change"] == "removed"
    assert "c0" not in changes
    assert result["summary"] == {"added": 0, "removed": 1, "changed": 2, "moved": 1}


def test_thinning_keeps_the_policy():
    now = 100 * DAY
    minutes = [(number, now - number * 60.0) for number in range(1, 10 * 24 * 60)]
    drop = to_thin(minutes, now, RetentionPolicy())
    kept = sorted(now - time for number, time in minutes if number not in drop)
    assert sum(1 for age in kept if age <= HOUR) == 60
    in_day = [age for age in kept if HOUR < age <= DAY]
    assert 135 <= len(in_day) <= 140  # one per 10 minutes
    in_week = [age for age in kept if DAY < age <= 7 * DAY]
    assert 142 <= len(in_week) <= 146  # one per hour
    assert 3 <= sum(1 for age in kept if age > 7 * DAY) <= 4  # one per day
    # Thinning again later drops only what aged into a coarser tier.
    later = [(n, t) for n, t in minutes if n not in drop]
    again = to_thin(later, now + 60.0, RetentionPolicy())
    assert len(again) <= 3
    # The newest stays even past every tier.
    assert to_thin([(1, 0.0), (2, 1.0)], 1e9, RetentionPolicy(((10.0, 0.0),))) == {1}


async def test_store_thinning_never_breaks_a_kept_version(tmp_path: Path):
    store = Store(str(tmp_path / "store.sqlite"), logging.getLogger("test"))
    store.open()
    content, ids = notebook(50)
    now = 30 * DAY
    recorded: dict[int, dict[str, Any]] = {}
    for step in range(150):
        content = copy.deepcopy(content)
        content["cells"][step % 50]["source"] = f"step {step}"
        if step % 7 == 0:
            content["cells"][step % 50]["outputs"] = []
        age = (150 - step) * 4 * HOUR
        request = VersionRequest(content, ids, ["someone"], time=now - age)
        number = await store.record_version("nb.ipynb", request)
        assert number is not None
        recorded[number] = content
    full = await store.history_bytes()
    dropped = await store.thin_history(RetentionPolicy(), keep_deleted=DAY, now=now)
    assert dropped >= 85
    versions = await store.history("nb.ipynb")
    assert versions is not None and versions[-1]["version"] == 150
    for version in versions:
        found = await store.read_version("nb.ipynb", version["version"])
        assert found is not None and found[0] == recorded[version["version"]]
    assert await store.history_bytes() < full * 0.7
    await store.close()
    # Reopened (a restart): the same versions, same content.
    reopened = Store(str(tmp_path / "store.sqlite"), logging.getLogger("test"))
    reopened.open()
    assert await reopened.history("nb.ipynb") == versions
    # A deleted notebook's history goes once it is older than keep_deleted.
    await reopened.delete("nb.ipynb")
    assert await reopened.thin_history(RetentionPolicy(), keep_deleted=DAY, now=now) == 0
    assert await reopened.history("nb.ipynb") == versions
    assert await reopened.thin_history(RetentionPolicy(), DAY, now=time.time() + 2 * DAY) == len(
        versions
    )
    assert await reopened.history("nb.ipynb") is None
    assert await reopened.history_bytes() == 0
    await reopened.close()


async def test_a_store_of_schema_1_gains_the_history_tables_and_keeps_its_rooms(
    tmp_path: Path,
):
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(
            """
            CREATE TABLE documents (path TEXT PRIMARY KEY, lineage INTEGER NOT NULL,
                snapshot BLOB NOT NULL, snapshot_checksum INTEGER NOT NULL,
                file_fingerprint TEXT NOT NULL, previous_fingerprint TEXT NOT NULL,
                file_content TEXT NOT NULL);
            CREATE TABLE updates (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL,
                data BLOB NOT NULL, checksum INTEGER NOT NULL);
            INSERT INTO documents VALUES ('kept.ipynb', 1, x'00', 0, 'a', 'b', '{}');
            PRAGMA user_version = 1;
            """
        )
    store = Store(str(path), logging.getLogger("test"))
    store.open()
    assert await store.paths() == ["kept.ipynb"]
    await store.close()
    with sqlite3.connect(path) as reopened:
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {row[0] for row in reopened.execute("SELECT name FROM sqlite_master")}
    assert {"history_blobs", "history_paths", "history_versions"} <= tables
