"""What of a room's document can be written to its .ipynb file.

The file writer writes what nbformat accepts and nothing else. Each cell is validated on
its own, once per change of the cell (cell_cache.py keeps the result), and the top level
at every write. If nbformat refuses part of the document, the writer does not freeze the
file: it writes what can be written, and says what it left out.

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

from dataclasses import dataclass, field
from typing import Any

import nbformat

# The keys of a notebook's top level that the document holds (roots `meta` and `cells`).
DOCUMENT_KEYS = frozenset({"cells", "metadata", "nbformat", "nbformat_minor"})
KNOWN_CELL_TYPES = frozenset({"code", "markdown", "raw"})


@dataclass
class Writable:
    # The notebook to write, as the file will hold it.
    content: dict[str, Any]
    # The document's cells that are in `content` (their indexes), and those left out:
    # the cell's id (or its position) -> why.
    kept: list[int]
    left_out: dict[str, str] = field(default_factory=dict)
    # Everything that is not written as the document has it, one sentence each.
    problems: list[str] = field(default_factory=list)

    def describe(self, path: str) -> str:
        return f"{path!r} is written without part of the room: " + "; ".join(self.problems)


def writable_top(top: dict[str, Any], base: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The notebook's top level (everything but `cells`) that can be written from the
    document's `top`; `base` is what the file holds now. Also what was not written as the
    document has it."""
    notebook = {key: value for key, value in base.items() if key not in DOCUMENT_KEYS}
    notebook.update((key, value) for key, value in top.items() if key != "cells")
    problems: list[str] = []
    minor = notebook.get("nbformat_minor")
    if notebook.get("nbformat") != 4 or not isinstance(minor, int) or minor < 0:
        notebook["nbformat"] = 4
        notebook["nbformat_minor"] = base.get("nbformat_minor", nbformat.current_nbformat_minor)
        problems.append("the document's nbformat version is not valid: the file's is kept")
    if _validation_error({**notebook, "cells": []}) is not None:
        notebook["metadata"] = base.get("metadata", {})
        problems.append("the notebook's metadata is not valid: the file's is kept")
    return notebook, problems


def writable_cell(cell: Any) -> Any:
    """A cell as the file will hold it: nbformat's defaults for the keys jupyter-ydoc
    leaves out, without the `trusted` flag nbformat never writes."""
    cell = _with_defaults(cell)
    if isinstance(cell, dict):
        metadata = cell.get("metadata")
        if isinstance(metadata, dict) and "trusted" in metadata:
            metadata = {k: v for k, v in metadata.items() if k != "trusted"}
            cell = {**cell, "metadata": metadata}
    return cell


def cell_error(cell: Any, nbformat_minor: int) -> str | None:
    """Why nbformat refuses this cell in a notebook of this version; None if it accepts it.

    A cell's validity does not depend on the rest of the notebook (duplicate ids aside,
    which jupyter-ydoc's `get` repairs), so it is checked once per change of the cell."""
    wrapper = {"nbformat": 4, "nbformat_minor": nbformat_minor, "metadata": {}, "cells": [cell]}
    return _validation_error(wrapper)


def left_out_name(cell: Any, index: int) -> str:
    cell_id = cell.get("id") if isinstance(cell, dict) else None
    return cell_id if isinstance(cell_id, str) and cell_id else f"#{index}"


def left_out_problem(name: str, error: str) -> str:
    return f"cell {name} is left out of the file (it stays in the room): {error}"


def _with_defaults(cell: Any) -> Any:
    if not isinstance(cell, dict) or cell.get("cell_type") not in KNOWN_CELL_TYPES:
        return cell
    cell = dict(cell)
    cell.setdefault("metadata", {})
    if cell["cell_type"] == "code":
        cell.setdefault("outputs", [])
        cell.setdefault("execution_count", None)
    return cell


def _validation_error(notebook: dict[str, Any]) -> str | None:
    """Why nbformat refuses this notebook, in one line; None if it accepts it."""
    try:
        # from_dict copies every dict and list: validation may repair what it is given.
        nbformat.validate(nbformat.from_dict(notebook))
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
