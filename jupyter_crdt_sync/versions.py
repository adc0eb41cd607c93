"""Versions of a notebook: how they are cut into shared blobs, compared and thinned.

Pure functions, no I/O; history_store.py keeps their blobs in SQLite.

A version is the notebook's top level (metadata, nbformat) and an ordered list of cell
entries `[cell id, cell hash, outputs hash]`. A cell without its outputs, a cell's outputs,
the top level and every chunk of the entry list are blobs, named by the hash of their
canonical JSON: whatever did not change between two versions is stored once. The entry
list is cut into chunks at cells chosen by their ids (about one in CHUNK_SPREAD), so an
inserted, deleted or edited cell changes one chunk, not every chunk after it; a version
row then holds only its top-level hash and its chunk hashes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HASH_CHARS = 24  # 96 bits of SHA-256: no collision among the blobs of any one store
CHUNK_SPREAD = 32


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def blob_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


# One cell of a version: its document id, the hash of the cell without its outputs, and
# the hash of its outputs ("" for a cell that has no `outputs` field: markdown, raw).
Entry = tuple[str, str, str]


@dataclass
class EncodedVersion:
    meta: str
    chunks: list[str]
    entries: list[Entry]
    # hash -> canonical JSON, for every blob this version refers to.
    blobs: dict[str, bytes] = field(default_factory=dict)


def _put(blobs: dict[str, bytes], value: Any) -> str:
    data = canonical(value)
    name = blob_hash(data)
    blobs[name] = data
    return name


def encode(content: Mapping[str, Any], cell_ids: list[str]) -> EncodedVersion:
    """Cut a notebook (as its file holds it) into blobs; `cell_ids` are the document's
    ids of its cells, in order (files before nbformat 4.5 carry none)."""
    blobs: dict[str, bytes] = {}
    meta = _put(blobs, {key: value for key, value in content.items() if key != "cells"})
    entries: list[Entry] = []
    for cell, cell_id in zip(content.get("cells", []), cell_ids, strict=True):
        body = {key: value for key, value in cell.items() if key != "outputs"}
        outputs = _put(blobs, cell["outputs"]) if "outputs" in cell else ""
        entries.append((cell_id, _put(blobs, body), outputs))
    chunks = [_put(blobs, chunk) for chunk in _chunked(entries)]
    return EncodedVersion(meta, chunks, entries, blobs)


def _chunked(entries: list[Entry]) -> list[list[Entry]]:
    chunks: list[list[Entry]] = []
    current: list[Entry] = []
    for entry in entries:
        current.append(entry)
        if zlib.crc32(entry[0].encode()) % CHUNK_SPREAD == 0:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


def decode_entries(chunks: Iterable[bytes]) -> list[Entry]:
    entries: list[Entry] = []
    for chunk in chunks:
        entries.extend((str(a), str(b), str(c)) for a, b, c in json.loads(chunk))
    return entries


def decode(meta: bytes, entries: list[Entry], blobs: Mapping[str, bytes]) -> dict[str, Any]:
    """The notebook of a version, from its top level, its entries and their blobs."""
    content: dict[str, Any] = json.loads(meta)
    cells = []
    for _, body, outputs in entries:
        if not body:  # a cell left out of a partial read
            cells.append({})
            continue
        cell = json.loads(blobs[body])
        if outputs:
            cell["outputs"] = json.loads(blobs[outputs])
        cells.append(cell)
    content["cells"] = cells
    return content


def cells_changed(old: list[Entry] | None, new: list[Entry]) -> int:
    """Cells added, removed, edited or moved from `old` to `new` (all of them if no old)."""
    if old is None:
        return len(new)
    old_by_id = {entry[0]: entry for entry in old}
    new_by_id = {entry[0]: entry for entry in new}
    added = new_by_id.keys() - old_by_id.keys()
    removed = old_by_id.keys() - new_by_id.keys()
    edited = {key for key, entry in new_by_id.items() if old_by_id.get(key, entry) != entry}
    moved = moved_cells([e[0] for e in old], [e[0] for e in new]) - edited
    return len(added) + len(removed) + len(edited) + len(moved)


def moved_cells(old_ids: list[str], new_ids: list[str]) -> set[str]:
    """Cells in both lists that are not in their longest common order: moved."""
    common = set(old_ids) & set(new_ids)
    a = [cell_id for cell_id in old_ids if cell_id in common]
    b = [cell_id for cell_id in new_ids if cell_id in common]
    in_order: set[str] = set()
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        in_order.update(a[block.a : block.a + block.size])
    return common - in_order


# -- comparing two versions ------------------------------------------------------------------


def diff(
    old: Mapping[str, Any], old_ids: list[str], new: Mapping[str, Any], new_ids: list[str]
) -> dict[str, Any]:
    """A per-cell comparison of two notebooks, `old` -> `new` (docs/history.md):
    only the cells that differ are listed, in `new`'s order, removed ones after."""
    old_cells = dict(zip(old_ids, old.get("cells", []), strict=True))
    new_cells = dict(zip(new_ids, new.get("cells", []), strict=True))
    old_index = {cell_id: index for index, cell_id in enumerate(old_ids)}
    moved = moved_cells(old_ids, new_ids)
    cells: list[dict[str, Any]] = []
    for index, cell_id in enumerate(new_ids):
        before = old_cells.get(cell_id)
        if before is not None and cell_id not in moved and before == new_cells[cell_id]:
            continue
        if before is None:
            cells.append(_cell_diff(cell_id, "added", None, index, None, new_cells[cell_id]))
            continue
        change = _cell_diff(
            cell_id, "changed", old_index[cell_id], index, before, new_cells[cell_id]
        )
        change["moved"] = cell_id in moved
        edited = change["source_diff"] or change["outputs_changed"] or change["fields_changed"]
        if edited or change["moved"]:
            change["change"] = "changed" if edited else "moved"
            cells.append(change)
    for cell_id in old_ids:
        if cell_id not in new_cells:
            old_cell = old_cells[cell_id]
            cells.append(_cell_diff(cell_id, "removed", old_index[cell_id], None, old_cell, None))
    summary = {kind: 0 for kind in ("added", "removed", "changed", "moved")}
    for change in cells:
        summary[change["change"]] += 1
    top_old = {k: v for k, v in old.items() if k != "cells"}
    top_new = {k: v for k, v in new.items() if k != "cells"}
    return {"metadata_changed": top_old != top_new, "summary": summary, "cells": cells}


def _cell_diff(
    cell_id: str,
    change: str,
    old_index: int | None,
    new_index: int | None,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
) -> dict[str, Any]:
    old_source = _source(old) if old is not None else ""
    new_source = _source(new) if new is not None else ""
    source_diff = "".join(
        difflib.unified_diff(
            old_source.splitlines(keepends=True),
            new_source.splitlines(keepends=True),
            "before",
            "after",
            n=2,
        )
    )
    old_rest = {k: v for k, v in (old or {}).items() if k not in ("source", "outputs", "id")}
    new_rest = {k: v for k, v in (new or {}).items() if k not in ("source", "outputs", "id")}
    return {
        "id": cell_id,
        "change": change,
        "moved": False,
        "old_index": old_index,
        "new_index": new_index,
        "source_diff": source_diff or None,
        "outputs_changed": (old or {}).get("outputs") != (new or {}).get("outputs"),
        "fields_changed": sorted(
            k for k in set(old_rest) | set(new_rest) if old_rest.get(k) != new_rest.get(k)
        ),
    }


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


# -- thinning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """Which versions to keep as they age: `tiers` are (up to age, one per interval) in
    seconds, youngest first; interval 0 keeps every version of that age; past the last
    tier's age a version is dropped (age inf: kept forever at the last interval)."""

    tiers: tuple[tuple[float, float], ...] = (
        (3600.0, 0.0),
        (86400.0, 600.0),
        (7 * 86400.0, 3600.0),
        (math.inf, 86400.0),
    )


def to_thin(versions: list[tuple[int, float]], now: float, policy: RetentionPolicy) -> set[int]:
    """The versions (number, time) the policy drops. In each interval of a tier the newest
    version stays: as versions age into coarser tiers, the one kept is one kept before.
    The newest version of all always stays."""
    if not versions:
        return set()
    newest = max(versions, key=lambda v: (v[1], v[0]))[0]
    kept: dict[tuple[int, int], tuple[float, int]] = {}
    drop: set[int] = set()
    for number, time in versions:
        age = max(0.0, now - time)
        tier = next((i for i, (limit, _) in enumerate(policy.tiers) if age <= limit), None)
        if tier is None:
            if number != newest:
                drop.add(number)
            continue
        interval = policy.tiers[tier][1]
        if interval <= 0:
            continue
        key = (tier, int(time // interval))
        best = kept.get(key)
        if best is None:
            kept[key] = (time, number)
        elif (time, number) > best:
            drop.add(best[1])
            kept[key] = (time, number)
        else:
            drop.add(number)
    drop.discard(newest)
    return drop
