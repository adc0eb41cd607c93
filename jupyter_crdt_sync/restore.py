"""Bringing a notebook's document back to a version, as an ordinary edit.

A restore changes only what differs: a cell's source by a text diff, its other fields
where they differ (merge.merge_cell), cells deleted, inserted or moved by id. Every window
sees it as one edit; cell ids stay as they were.

- Whole notebook: the document becomes the version: its cells in its order, its metadata.
- Some cells: the document keeps everything else; a chosen cell it still has takes the
  version's content, one it no longer has comes back after the nearest cell before it in
  the version that the document still has (at the top if none).

`current` is the document as plain cells when the caller knows it (the file as last
written, with nothing changed since): then only the cells that differ are read from or
written to the document, and a restore of a 1000-cell notebook costs what differs.
"""

from __future__ import annotations

from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Map

from .cells import new_ycell
from .merge import merge_cell
from .versions import moved_cells

Notebook = dict[str, Any]


class RestoreError(ValueError):
    """The restore asked for cannot be done (a cell the version does not have)."""


class MissingVersionError(Exception):
    """The version asked for does not exist (never recorded, or thinned away)."""


def restore_into(
    notebook: YNotebook,
    version: Notebook,
    version_ids: list[str],
    cell_ids: list[str] | None = None,
    current: tuple[Notebook, list[str]] | None = None,
) -> tuple[Notebook, list[str]]:
    """Make the document hold `version` (or only its `cell_ids`), in one transaction.
    Returns the notebook the document now holds, and its cell ids. Raises RestoreError
    before changing anything."""
    if current is None:
        content = notebook.get()
        current = content, [str(cell["id"]) for cell in content["cells"]]
    now, now_ids = current
    now_cells = dict(zip(now_ids, now["cells"], strict=True))
    version_cells = dict(zip(version_ids, version["cells"], strict=True))
    if cell_ids is None:
        target_ids, target_cells, meta = list(version_ids), version_cells, version
    else:
        unknown = [cell_id for cell_id in cell_ids if cell_id not in version_cells]
        if unknown:
            raise RestoreError(f"the version has no cell {unknown[0]!r}")
        target_ids = _with_cells(now_ids, version_ids, set(cell_ids))
        chosen = set(cell_ids)
        target_cells = {
            cell_id: version_cells[cell_id] if cell_id in chosen else now_cells[cell_id]
            for cell_id in target_ids
        }
        meta = now
    with notebook.ydoc.transaction():
        if cell_ids is None:
            _restore_metadata(notebook, now, version)
        _restore_cells(notebook, now_ids, now_cells, target_ids, target_cells)
    restored = {key: value for key, value in meta.items() if key != "cells"}
    restored["cells"] = [target_cells[cell_id] for cell_id in target_ids]
    return restored, target_ids


def _restore_cells(
    notebook: YNotebook,
    now_ids: list[str],
    now_cells: dict[str, Any],
    target_ids: list[str],
    target_cells: dict[str, Any],
) -> None:
    ycells = notebook.ycells
    wanted = set(target_ids)
    kept = [cell_id for cell_id in now_ids if cell_id in wanted]
    # Cells out of the target's order are taken out and put back in their place.
    leaving = (set(now_ids) - wanted) | moved_cells(kept, target_ids)
    order = list(now_ids)
    for index in range(len(order) - 1, -1, -1):
        if order[index] in leaving:
            del ycells[index]
            del order[index]
    for position, cell_id in enumerate(target_ids):
        cell = {**target_cells[cell_id], "id": cell_id}
        if position < len(order) and order[position] == cell_id:
            before = now_cells[cell_id]
            if before != target_cells[cell_id]:
                ycell: Map = ycells[position]
                merge_cell(ycell, before, cell)
                for key in set(before) - set(cell) - {"id", "source"}:
                    if key in ycell:
                        del ycell[key]
        else:
            ycells.insert(position, new_ycell(notebook, cell))
            order.insert(position, cell_id)


def _restore_metadata(notebook: YNotebook, now: Notebook, version: Notebook) -> None:
    if now.get("metadata") != version.get("metadata"):
        ymeta = notebook.ydoc.get("meta", type=Map)
        ymeta["metadata"] = Map(version.get("metadata") or {})
    for key in ("nbformat", "nbformat_minor"):
        if key in version and now.get(key) != version[key]:
            notebook.ydoc.get("meta", type=Map)[key] = version[key]


def _with_cells(current_ids: list[str], version_ids: list[str], chosen: set[str]) -> list[str]:
    """The document's cell order with the chosen cells it lacks put back where the
    version had them: after the nearest earlier cell of the version still present."""
    order = list(current_ids)
    present = set(order)
    previous: str | None = None
    for cell_id in version_ids:
        if cell_id in chosen and cell_id not in present:
            position = order.index(previous) + 1 if previous is not None else 0
            order.insert(position, cell_id)
            present.add(cell_id)
        if cell_id in present:
            previous = cell_id
    return order
