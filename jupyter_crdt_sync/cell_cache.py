"""The document's cells as the file writer needs them, each prepared once per change.

Preparing a cell for the file means reading it out of the CRDT (jupyter-ydoc's
`get_cell`), filling in nbformat's defaults, validating it and serialising it
(notebook_json.py): about 0.5 ms for a cell with 10 kB of output, half a second for a
10 MB notebook, all of it holding the GIL. `CellCache` keeps the result per cell and
drops it when the cell changes, so that a save after a keystroke prepares one cell.

It follows the cells array with a deep observer: an event inside cell `i` (its source, an
output appended, a metadata key) makes entry `i` stale; a change of the array itself
(cells inserted, deleted, moved) is applied to the entries from the event's delta, the new
cells stale. The observer only edits a Python list: it reads nothing from the document.

`prepare` fills the stale entries in slices that yield to the event loop every few
milliseconds, so that opening and saving a large notebook stalls no other room; a change
of the array between two slices restarts the scan over the (by then mostly fresh) entries.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from typing import Any

from jupyter_ydoc import YNotebook

from .notebook_json import CellPieces, cell_pieces
from .writable import cell_error, writable_cell

# How long one slice of work may hold the event loop.
SLICE_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class CellEntry:
    doc_id: str  # the cell's id in the document (the file of nbformat < 4.5 has none)
    cell: Any  # as the file will hold it (writable.writable_cell)
    error: str | None  # why nbformat refuses the cell; it is then left out of the file
    pieces: CellPieces | None  # None for a cell that is left out


class CellCache:
    def __init__(self, notebook: YNotebook, notary: Any = None) -> None:
        self._notebook = notebook
        self._notary = notary
        self._entries: list[CellEntry | None] = [None] * len(notebook.ycells)
        self._structure = 0  # counts the changes of the cells array itself
        self._minor: int | None = None  # the nbformat_minor the entries were checked for
        self._closed = False
        ref = weakref.ref(self)

        def observe(events: list[Any]) -> None:
            cache = ref()
            if cache is not None:
                cache._observe(events)

        # Held through a weak reference: the document must not keep its writer alive.
        self._subscription: Any = notebook.ycells.observe_deep(observe)
        self.prepared = 0  # cells prepared so far (tests count them)

    def close(self) -> None:
        self._closed = True
        if self._subscription is not None:
            self._notebook.ycells.unobserve(self._subscription)
            self._subscription = None
        self._entries = []

    def _observe(self, events: list[Any]) -> None:
        # Paths inside cells are indexes after the transaction: apply the array's own
        # delta (given against the state before it) first.
        nested = []
        for event in events:
            path = event.path
            if path:
                nested.append(path[0])
                continue
            self._structure += 1
            position = 0
            for change in event.delta:
                if "retain" in change:
                    position += change["retain"]
                elif "delete" in change:
                    del self._entries[position : position + change["delete"]]
                elif "insert" in change:
                    count = len(change["insert"])
                    self._entries[position:position] = [None] * count
                    position += count
        for index in nested:
            if isinstance(index, int) and 0 <= index < len(self._entries):
                self._entries[index] = None

    async def prepare(self, nbformat_minor: int) -> list[CellEntry]:
        """Every cell of the document, prepared; yields to the event loop between slices."""
        if self._closed:
            raise RuntimeError("the writer's cell cache is closed")
        if nbformat_minor != self._minor:
            # Cell ids and the schema a cell is checked against depend on the version.
            self._entries = [None] * len(self._notebook.ycells)
            self._minor = nbformat_minor
        ycells = self._notebook.ycells
        while True:
            structure = self._structure
            started = time.perf_counter()
            for index, entry in enumerate(self._entries):
                if entry is not None:
                    continue
                self._entries[index] = self._prepare_cell(
                    self._notebook.get_cell(index), str(ycells[index].get("id")), nbformat_minor
                )
                if time.perf_counter() - started > SLICE_SECONDS:
                    break
            else:
                if structure == self._structure:
                    return list(self._entries)  # type: ignore[arg-type]
            await asyncio.sleep(0)
            if self._closed:
                raise RuntimeError("the writer's cell cache is closed")

    def _prepare_cell(self, cell: dict[str, Any], doc_id: str, minor: int) -> CellEntry:
        self.prepared += 1
        return prepare_cell(cell, doc_id, minor, self._notary)


def prepare_cell(cell: Any, doc_id: str, minor: int, notary: Any = None) -> CellEntry:
    cell = writable_cell(cell)
    error = cell_error(cell, minor)
    pieces = cell_pieces(cell, notary) if error is None else None
    return CellEntry(doc_id, cell, error, pieces)


async def prepare_cells(
    cells: list[Any], doc_ids: list[str], minor: int, notary: Any = None
) -> list[CellEntry]:
    """Prepare cells read some other way (no cache), in slices as `CellCache.prepare`."""
    entries = []
    started = time.perf_counter()
    for cell, doc_id in zip(cells, doc_ids, strict=False):
        entries.append(prepare_cell(cell, doc_id, minor, notary))
        if time.perf_counter() - started > SLICE_SECONDS:
            await asyncio.sleep(0)
            started = time.perf_counter()
    return entries
