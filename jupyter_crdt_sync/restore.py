"""Bringing a notebook's document back to a version, as an ordinary edit.

A restore is a merge (merge.py) from the document as it is now to the wanted notebook: the
source of a cell changes by a text diff, other fields where they differ, cells are added
and deleted by id. Every window sees it as one edit; cell ids stay as they were.

- Whole notebook: the wanted notebook is the version; cells in another order than the
  version's are moved back (deleted and inserted again, with the version's content).
- Some cells: the wanted notebook is the document now with those cells as the version had
  them; a cell deleted since comes back after the nearest cell before it in the version
  that the document still has (at the top if none).
"""

from __future__ import annotations

from typing import Any

from jupyter_ydoc import YNotebook

from .cells import cell_index, new_ycell
from .merge import merge_into_notebook
from .versions import moved_cells


class RestoreError(ValueError):
    """The restore asked for cannot be done (a cell the version does not have)."""


def restore_into(
    notebook: YNotebook,
    version: dict[str, Any],
    version_ids: list[str],
    cell_ids: list[str] | None = None,
) -> list[str]:
    """Make the document hold `version` (or only its `cell_ids`), in one transaction;
    returns the ids of the cells restored. Raises RestoreError before changing anything."""
    current = notebook.get()
    current_ids = [str(cell["id"]) for cell in current["cells"]]
    wanted_cells = {
        cell_id: {**cell, "id": cell_id}
        for cell_id, cell in zip(version_ids, version["cells"], strict=True)
    }
    if cell_ids is None:
        wanted = {**version, "cells": [wanted_cells[cell_id] for cell_id in version_ids]}
        wanted_ids = list(version_ids)
    else:
        unknown = [cell_id for cell_id in cell_ids if cell_id not in wanted_cells]
        if unknown:
            raise RestoreError(f"the version has no cell {unknown[0]!r}")
        wanted_ids = _with_cells(current_ids, version_ids, set(cell_ids))
        current_cells = dict(zip(current_ids, current["cells"], strict=True))
        chosen = set(cell_ids)
        wanted = {
            **current,
            "cells": [
                wanted_cells[cell_id] if cell_id in chosen else current_cells[cell_id]
                for cell_id in wanted_ids
            ],
        }
    with notebook.ydoc.transaction():
        merge_into_notebook(notebook, current, current_ids, wanted)
        if cell_ids is None:
            _reorder(notebook, wanted, wanted_ids)
    return list(cell_ids) if cell_ids is not None else list(version_ids)


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


def _reorder(notebook: YNotebook, wanted: dict[str, Any], wanted_ids: list[str]) -> None:
    ycells = notebook.ycells
    have = [str(ycell.get("id")) for ycell in ycells]
    if have == wanted_ids:
        return
    cells = dict(zip(wanted_ids, wanted["cells"], strict=True))
    for cell_id in moved_cells(have, wanted_ids):
        index = cell_index(ycells, cell_id)
        if index is not None:
            del ycells[index]
    for position, cell_id in enumerate(wanted_ids):
        if cell_index(ycells, cell_id) is None:
            ycells.insert(position, new_ycell(notebook, cells[cell_id]))
