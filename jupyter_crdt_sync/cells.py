"""Small helpers for the cells of a notebook, in the document and as plain dicts.

Every module that finds a cell by id, reads a source or builds an output for the document
uses these, so that the layout jupyter-ydoc and @jupyter/ydoc expect is written in one place.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Array, Map, Text


def find_cell(cells: YNotebook | Array, cell_id: str, hint: int = 0) -> tuple[int, Map] | None:
    """The index and Map of the cell with this id; `hint` is where it was last seen."""
    ycells = cells.ycells if isinstance(cells, YNotebook) else cells
    if 0 <= hint < len(ycells):
        cell = ycells[hint]
        if isinstance(cell, Map) and cell.get("id") == cell_id:
            return hint, cell
    for index, cell in enumerate(ycells):
        if isinstance(cell, Map) and cell.get("id") == cell_id:
            return index, cell
    return None


def cell_index(cells: YNotebook | Array, cell_id: str) -> int | None:
    """Where the cell with this id is, or None."""
    found = find_cell(cells, cell_id)
    return None if found is None else found[0]


def multiline(value: Any) -> str:
    """A multi-line string as nbformat allows it in a file (a string or a list of lines)."""
    if isinstance(value, list):
        return "".join(str(line) for line in value)
    return "" if value is None else str(value)


def plain(value: Any) -> Any:
    """NotebookNode trees (and any dict or list) as builtin dicts and lists, so that
    comparisons are cheap and exact."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def cell_source(cell: dict[str, Any]) -> str:
    """A plain cell's source as one string (cells of unknown types may have none)."""
    return multiline(cell.get("source", ""))


def youtput(output: dict[str, Any]) -> Map:
    """An output as jupyter-ydoc and @jupyter/ydoc store it: a Map, a stream's text one
    Text (never a list: @jupyter/ydoc would join a list with commas)."""
    if output.get("output_type") == "stream":
        output = {**output, "text": Text(multiline(output.get("text", "")))}
    return Map(output)


def new_ycell(notebook: YNotebook, cell: dict[str, Any]) -> Map:
    """A cell for the document, laid out as jupyter-ydoc does; a cell of a type this
    nbformat does not know may have no `source`, and then gets none (jupyter-ydoc's
    `create_ycell` would fail, or add one that was never in the file)."""
    if "source" in cell:
        return notebook.create_ycell(cell)
    metadata = cell.get("metadata")
    return Map(
        {
            **copy.deepcopy(cell),
            "id": cell.get("id") or str(uuid.uuid4()),
            "metadata": Map(copy.deepcopy(metadata)) if isinstance(metadata, dict) else metadata,
        }
    )


def load_notebook(notebook: YNotebook, content: dict[str, Any]) -> None:
    """Fill an empty document from a notebook, in one transaction: jupyter-ydoc's `set`,
    except that cells without a `source` (types this nbformat does not know) keep none."""
    cells = content.get("cells") or []
    sourceless = [index for index, cell in enumerate(cells) if "source" not in cell]
    with notebook.ydoc.transaction():
        notebook.set(
            {
                **content,
                "cells": [cell if "source" in cell else {**cell, "source": ""} for cell in cells],
            }
        )
        for index in sourceless:
            del notebook.ycells[index]["source"]
