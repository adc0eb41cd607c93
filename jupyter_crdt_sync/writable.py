"""What of a room's document can be written to its .ipynb file.

The file writer writes what nbformat accepts and nothing else. A document that is whole
(the usual case) is written as it is, validated once. If nbformat refuses it, the writer
does not freeze the file: it writes what can be written, and says what it left out.

- A cell nbformat refuses (an output of an unknown type, tags that are not strings, ...)
  is left out of the file; it stays in the room and in its stored history, and is written
  again as soon as someone repairs it.
- Notebook metadata nbformat refuses: the file keeps the metadata it has.
- Keys of the file's top level that the document does not hold (a newer nbformat's) are
  kept as the file has them.
- Keys that jupyter-ydoc leaves out of a cell it creates (a code cell's
  `execution_count`, `outputs`, a cell's `metadata`) are written with nbformat's defaults.

A cell of a type this nbformat does not know, or a newer `nbformat_minor`, is valid for
nbformat (it relaxes its schema for newer minor versions), so it is written as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode

# The keys of a notebook's top level that the document holds (roots `meta` and `cells`).
DOCUMENT_KEYS = frozenset({"cells", "metadata", "nbformat", "nbformat_minor"})
KNOWN_CELL_TYPES = frozenset({"code", "markdown", "raw"})


@dataclass
class Writable:
    # The notebook to write, as the file will hold it, and as nbformat's node.
    content: dict[str, Any]
    node: NotebookNode
    # The document's cells that are in `content` (their indexes), and those left out:
    # the cell's id (or its position) -> why.
    kept: list[int]
    left_out: dict[str, str] = field(default_factory=dict)
    # Everything that is not written as the document has it, one sentence each.
    problems: list[str] = field(default_factory=list)

    def describe(self, path: str) -> str:
        return f"{path!r} is written without part of the room: " + "; ".join(self.problems)


def writable_notebook(content: dict[str, Any], base: dict[str, Any]) -> Writable:
    """The notebook that can be written from the document's `content` (as YNotebook.get
    gives it); `base` is what the file holds now.

    Raises only if not even that can be validated (then nothing is written)."""
    notebook = {key: value for key, value in base.items() if key not in DOCUMENT_KEYS}
    notebook.update(content)
    problems: list[str] = []
    minor = notebook.get("nbformat_minor")
    if notebook.get("nbformat") != 4 or not isinstance(minor, int) or minor < 0:
        notebook["nbformat"] = 4
        notebook["nbformat_minor"] = base.get("nbformat_minor", nbformat.current_nbformat_minor)
        problems.append("the document's nbformat version is not valid: the file's is kept")
    cells = [_with_defaults(cell) for cell in notebook.get("cells") or []]
    notebook["cells"] = cells
    error = _validation_error(notebook)
    if error is None:
        return Writable(notebook, _node(notebook), list(range(len(cells))), {}, problems)

    if _validation_error({**notebook, "cells": []}) is not None:
        notebook["metadata"] = base.get("metadata", {})
        problems.append("the notebook's metadata is not valid: the file's is kept")
    kept: list[int] = []
    left_out: dict[str, str] = {}
    for index, cell in enumerate(cells):
        cell_error = _validation_error({**notebook, "cells": [cell]})
        if cell_error is None:
            kept.append(index)
            continue
        cell_id = cell.get("id") if isinstance(cell, dict) else None
        name = cell_id if isinstance(cell_id, str) and cell_id else f"#{index}"
        left_out[name] = cell_error
        problems.append(f"cell {name} is left out of the file (it stays in the room): {cell_error}")
    notebook["cells"] = [cells[index] for index in kept]
    error = _validation_error(notebook)
    if error is not None:
        raise ValueError(f"the notebook is not valid even without its invalid cells: {error}")
    return Writable(notebook, _node(notebook), kept, left_out, problems)


def _with_defaults(cell: Any) -> Any:
    if not isinstance(cell, dict) or cell.get("cell_type") not in KNOWN_CELL_TYPES:
        return cell
    cell = dict(cell)
    cell.setdefault("metadata", {})
    if cell["cell_type"] == "code":
        cell.setdefault("outputs", [])
        cell.setdefault("execution_count", None)
    return cell


def _node(notebook: dict[str, Any]) -> NotebookNode:
    return nbformat.from_dict(copy.deepcopy(notebook))


def _validation_error(notebook: dict[str, Any]) -> str | None:
    """Why nbformat refuses this notebook, in one line; None if it accepts it."""
    try:
        nbformat.validate(_node(notebook))
    except nbformat.ValidationError as exc:
        return _one_line(exc.message)
    except Exception as exc:
        # nbformat.validate raises TypeError, ImportError, ... on some hostile content
        # (docs/pitfalls): any exception means "not valid".
        return _one_line(repr(exc))
    return None


def _one_line(message: str, limit: int = 200) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
