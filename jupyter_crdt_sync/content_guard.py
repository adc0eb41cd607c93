"""The content guard: a peer's update that would leave the document as something no valid
notebook can be written from is refused, before any other peer, the store or the file
sees it.

The rule (docs/design.md, "Content refused at the boundary") checks the shape nbformat 4
gives every notebook, whatever its minor version, and only that:

- every element of `cells` is a Map with a string `cell_type`; an `id`, if any, is a
  string; `metadata`, if any, is a map;
- a `code`, `markdown` or `raw` cell has a `source` that is text; a code cell's
  `execution_count`, if any, is null or a whole number >= 0, and its `outputs`, if any,
  a list of maps, each with a known `output_type` (any string if the notebook's
  `nbformat_minor` is newer than this nbformat's) and the keys that type requires, of the
  right kind;
- the root `meta` keeps `nbformat` 4, a whole `nbformat_minor` >= 0 and a map `metadata`.

Cells of other types (a newer nbformat's), extra keys anywhere, and anything inside
metadata are accepted: they round-trip. What nbformat refuses beyond this (say, tags that
are not strings) is left to the file writer, which writes such a cell's neighbours and
keeps the cell in the room (writable.py).

Only what an update touched is checked: the cells it inserted or whose keys it set, and
the outputs it added or changed. Text edits, the bulk of all updates, are not looked at.
A refused update is undone at once with an undo manager that tracks only peers' updates
(and forgets them after each one), so its undoing leaves with it: the room sends both
together, which no peer, store or file sees as a change.
"""

from __future__ import annotations

from typing import Any

import nbformat
from jupyter_ydoc import YNotebook
from pycrdt import Array, ArrayEvent, Map, MapEvent, Text, TextEvent, UndoManager

KNOWN_CELL_TYPES = frozenset({"code", "markdown", "raw"})
# The keys each output type requires (nbformat 4 schema), and the kinds they may have.
_TEXT = (Text, str, list)
_MAP = (Map, dict)
_LIST = (Array, list)
OUTPUT_KEYS: dict[str, dict[str, tuple[type, ...]]] = {
    "stream": {"name": (str,), "text": _TEXT},
    "display_data": {"data": _MAP},
    "execute_result": {"data": _MAP},
    "error": {"ename": (str,), "evalue": (str,), "traceback": _LIST},
}
_OPTIONAL_OUTPUT_KEYS = {"metadata": _MAP}


class ContentGuard:
    """Watches one room's document while a peer's update is applied."""

    def __init__(self, notebook: YNotebook, origin: object) -> None:
        self._cells: Array = notebook.ycells
        self._meta: Map = notebook.ydoc.get("meta", type=Map)
        self._cells_touched: list[Any] = []
        self._outputs_touched: list[Any] = []
        self._meta_touched = False
        self._watching = False
        # Tracks only transactions with `origin` (a peer's update), and is cleared after
        # each: it keeps nothing alive between updates.
        self._undo = UndoManager(scopes=[self._cells, self._meta], capture_timeout_millis=0)
        self._undo.include_origin(origin)
        self._subscriptions = [
            (self._cells, self._cells.observe_deep(self._on_cells)),
            (self._meta, self._meta.observe(self._on_meta)),
        ]

    def start(self) -> None:
        self._watching = True

    def finish(self) -> str | None:
        """Stop watching; what is wrong with what the update touched, or None."""
        self._watching = False
        cells, self._cells_touched = self._cells_touched, []
        outputs, self._outputs_touched = self._outputs_touched, []
        meta_touched, self._meta_touched = self._meta_touched, False
        if meta_touched:
            problem = meta_problem(self._meta)
            if problem is not None:
                return problem
        future = _newer_minor(self._meta)
        for cell in cells:
            problem = cell_problem(cell, future)
            if problem is not None:
                return problem
        for output in outputs:
            problem = output_problem(output, future)
            if problem is not None:
                return f"an output {problem}"
        return None

    def undo(self) -> None:
        """Undo the update just refused."""
        self._undo.undo()
        self._undo.clear()

    def forget(self) -> None:
        self._undo.clear()

    def close(self) -> None:
        for shared, subscription in self._subscriptions:
            shared.unobserve(subscription)
        self._undo.clear()

    # -- observers: only note what changed; it is read once the update is applied ------

    def _on_cells(self, events: list[Any]) -> None:
        if not self._watching:
            return
        for event in events:
            if isinstance(event, TextEvent):
                continue  # typing: a Text stays text
            path = event.path
            if not path:
                if isinstance(event, ArrayEvent):
                    for change in event.delta:
                        self._cells_touched.extend(change.get("insert", ()))
            elif len(path) == 1:
                self._cells_touched.append(event.target)
            elif path[1] == "outputs":
                if len(path) == 2 and isinstance(event, ArrayEvent):
                    for change in event.delta:
                        self._outputs_touched.extend(change.get("insert", ()))
                elif len(path) == 3 and isinstance(event, MapEvent):
                    self._outputs_touched.append(event.target)

    def _on_meta(self, event: Any) -> None:
        if self._watching:
            self._meta_touched = True


def cell_problem(cell: Any, future: bool = False) -> str | None:
    """What makes this cell one no valid notebook has, or None."""
    if not isinstance(cell, Map):
        return "puts something other than a cell into the cells array"
    name = _cell_name(cell)
    cell_type = cell.get("cell_type")
    if not isinstance(cell_type, str):
        return f"{name} has no cell_type" if cell_type is None else f"{name}: cell_type not text"
    if "id" in cell and not isinstance(cell.get("id"), str):
        return f"{name}: id is not text"
    if "metadata" in cell and not isinstance(cell.get("metadata"), _MAP):
        return f"{name}: metadata is {_kind(cell.get('metadata'))}, not a map"
    if cell_type not in KNOWN_CELL_TYPES:
        return None
    if "source" not in cell:
        return f"{name} has no source"
    if not isinstance(cell.get("source"), (Text, str)):
        return f"{name}: source is {_kind(cell.get('source'))}, not text"
    if cell_type != "code":
        return None
    count = cell.get("execution_count")
    if count is not None and not _whole(count):
        return f"{name}: execution_count is {_kind(count)}, not a whole number"
    if "outputs" not in cell:
        return None
    outputs = cell.get("outputs")
    if not isinstance(outputs, _LIST):
        return f"{name}: outputs is {_kind(outputs)}, not a list"
    for output in outputs:
        problem = output_problem(output, future)
        if problem is not None:
            return f"{name}: an output {problem}"
    return None


def output_problem(output: Any, future: bool = False) -> str | None:
    if not isinstance(output, _MAP):
        return f"is {_kind(output)}, not a map"
    output_type = output.get("output_type")
    if not isinstance(output_type, str):
        return "has no output_type"
    required = OUTPUT_KEYS.get(output_type)
    if required is None:
        return None if future else f"has an unknown output_type {output_type[:20]!r}"
    for key, kinds in {**required, **_OPTIONAL_OUTPUT_KEYS}.items():
        if key not in output:
            if key in required:
                return f"of type {output_type} has no {key}"
            continue
        if not isinstance(output.get(key), kinds):
            return f"of type {output_type}: {key} is {_kind(output.get(key))}"
    if output_type == "execute_result":
        count = output.get("execution_count")
        if count is not None and not _whole(count):
            return f"of type {output_type}: execution_count is {_kind(count)}"
    return None


def meta_problem(meta: Map) -> str | None:
    """What makes the document's root `meta` one no valid notebook has, or None."""
    major = meta.get("nbformat")
    if major != 4:
        return "the notebook's nbformat must stay 4"
    if not _whole(meta.get("nbformat_minor")):
        return "the notebook's nbformat_minor must stay a whole number"
    if not isinstance(meta.get("metadata"), _MAP):
        return "the notebook's metadata must stay a map"
    return None


def _newer_minor(meta: Map) -> bool:
    """Whether the notebook is of a newer minor version than this nbformat knows (its
    outputs may then be of types this nbformat does not know)."""
    minor = meta.get("nbformat_minor")
    return _whole(minor) and minor > nbformat.current_nbformat_minor


def _whole(value: Any) -> bool:
    # Yjs numbers are floats: 3.0 is 3.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value >= 0 and float(value).is_integer()


def _cell_name(cell: Map) -> str:
    cell_id = cell.get("id")
    return f"cell {cell_id[:24]!r}" if isinstance(cell_id, str) else "a cell"


def _kind(value: Any) -> str:
    if isinstance(value, (Map, dict)):
        return "a map"
    if isinstance(value, (Array, list)):
        return "a list"
    if isinstance(value, Text):
        return "text"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
