"""A notebook's file text assembled from pieces serialised once per cell.

`nbformat.write` serialises the whole notebook for every save: it deep-copies it, splits
multi-line strings into lists of lines and runs the pure-Python JSON encoder (`indent=1`
has no C encoder) over everything, about 100 ms for 10 MB. Here each cell is serialised
on its own (`CellPieces`, kept by the file writer until the cell changes), and the file
is joined from the pieces: byte-identical to `nbformat.write` of the same notebook
(tests/test_notebook_json.py compares them on real and generated notebooks).

This works because JSON with `indent` puts nothing but the indentation of the enclosing
levels in front of a nested value's lines, and never writes a newline inside a string
(it is escaped): a cell serialised at depth 0 is the same text, each line after its first
indented by two more spaces, as the cell inside the notebook's `cells` list.

Nothing here makes a buffer of the whole file: on a 2-core VM, allocating and filling
a new 10 MB string took 30-50 ms (page faults), as long as serialising a cell changed.
The pieces are written one after the other (notebook_save.py), the store records them and
their SHA-256 (store.py), and the bytes nbformat's notary signs are made piece by piece on
a worker thread (nbformat.sign: a notebook is signed as trusted when every cell is).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nbformat import from_dict
from nbformat.sign import yield_everything
from nbformat.v4.rwbase import split_lines

# As nbformat.v4.nbjson.JSONWriter writes a notebook.
_FILE_JSON = {"indent": 1, "sort_keys": True, "separators": (",", ": "), "ensure_ascii": False}
# The depth of a cell in the file: notebook -> "cells" -> the cell.
_CELL_INDENT = "\n  "


@dataclass(frozen=True, slots=True)
class CellPieces:
    """One cell as it will be written (defaults filled in, `trusted` left out), with its
    text in the file and whether the notary trusts its outputs."""

    cell: dict[str, Any]
    # Its JSON as it stands in the file (lines split, indented for its depth), UTF-8.
    text: bytes
    trusted: bool


def cell_pieces(cell: dict[str, Any], notary: Any = None) -> CellPieces:
    """Serialise one cell; `notary` (nbformat's NotebookNotary) decides `trusted`."""
    node = from_dict({"cells": [cell]})  # a copy: split_lines changes what it is given
    split = split_lines(node).cells[0]
    text = json.dumps(split, **_FILE_JSON).replace("\n", _CELL_INDENT).encode()
    trusted = False
    if notary is not None:
        trusted = bool(notary.check_cells(from_dict({"nbformat": 4, "cells": [cell]})))
    return CellPieces(cell, text, trusted)


@dataclass(frozen=True)
class NotebookText:
    """A whole notebook, as the pieces of its file (`file`, UTF-8, in order: no buffer of
    the whole file is ever made). `top` is everything but the cells; its `metadata` is
    what the file holds (no `signature`, no `orig_nbformat`: notebook_file.file_view), as
    nbformat's strip_transient leaves it."""

    top: dict[str, Any]
    cells: list[dict[str, Any]]
    file: list[bytes]

    def file_bytes(self) -> bytes:
        return b"".join(self.file)

    def signed(self) -> Iterator[bytes]:
        """What nbformat's notary hashes of the notebook (compute_signature), in order: it
        walks every cell, so run it on a worker thread."""
        for key in sorted({*self.top, "cells"}):
            yield key.encode()
            if key == "cells":
                for cell in self.cells:
                    yield b"".join(yield_everything(cell))
            else:
                yield from yield_everything(self.top[key])


def notebook_text(top: dict[str, Any], cells: list[CellPieces]) -> NotebookText:
    """The notebook with the keys of `top` (everything but `cells`) and these cells."""
    file: list[bytes] = [b"{\n"]
    for position, key in enumerate(sorted({*top, "cells"})):
        name = json.dumps(key, ensure_ascii=False)
        separator = "" if position == 0 else ",\n"
        if key != "cells":
            value = json.dumps(top[key], **_FILE_JSON).replace("\n", "\n ")
            file.append(f"{separator} {name}: {value}".encode())
        elif not cells:
            file.append(f"{separator} {name}: []".encode())
        else:
            file.append(f"{separator} {name}: [{_CELL_INDENT}".encode())
            between = ("," + _CELL_INDENT).encode()
            for index, piece in enumerate(cells):
                if index:
                    file.append(between)
                file.append(piece.text)
            file.append(b"\n ]")
    file.append(b"\n}\n")
    return NotebookText(
        {key: value for key, value in top.items() if key != "cells"},
        [piece.cell for piece in cells],
        file,
    )
