"""Merging a notebook file edited outside the room into the room's document.

A three-way merge: `base` is the notebook as the room last wrote it (or loaded it), `theirs`
is the file now, and the document holds `ours`. What changed from base to theirs is applied
to ours, so edits made in the room meanwhile survive:

- cells are matched by id (by position and source for files without ids);
- a cell's source gets only the character edits base -> theirs, placed where those
  characters now are in ours (UTF-8 offsets for pycrdt);
- other fields (type, metadata, outputs, execution count) take theirs where theirs changed;
- cells added outside are inserted after their predecessor; cells deleted outside are
  deleted unless the room changed them meanwhile.

Never by appending the file's cells to the document: that is how cells get duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Array, Map, Text

from .cells import cell_index, cell_source, new_ycell, youtput
from .text_offsets import utf8_offset


@dataclass
class MergeReport:
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    kept_despite_deletion: list[str] = field(default_factory=list)
    # The document's id for each of theirs' cells, in order: the base of the next merge.
    theirs_cell_ids: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted or self.changed)


def merge_text(base: str, ours: str, theirs: str) -> list[tuple[int, int, str]]:
    """The edits (start, end, replacement), in `ours` indexes and in descending order,
    that bring the changes base -> theirs into ours."""
    if base == theirs or ours == theirs:
        return []
    ours_index: list[int | None] = [None] * len(base)
    for a, b, size in SequenceMatcher(None, base, ours, autojunk=False).get_matching_blocks():
        for offset in range(size):
            ours_index[a + offset] = b + offset

    def boundary(position: int) -> int:
        # Where a boundary of base falls in ours: before the next base character that
        # survives there, or at the end.
        for index in range(position, len(base)):
            mapped = ours_index[index]
            if mapped is not None:
                return mapped
        return len(ours)

    deletions: set[int] = set()
    insertions: list[tuple[int, str]] = []
    opcodes = SequenceMatcher(None, base, theirs, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in opcodes:
        if tag in ("delete", "replace"):
            deletions.update(m for m in ours_index[i1:i2] if m is not None)
        if tag in ("insert", "replace"):
            insertions.append((boundary(i2 if tag == "replace" else i1), theirs[j1:j2]))

    edits = [(position, position, text) for position, text in insertions]
    # Runs of deleted characters become one edit, split wherever something is inserted.
    inserted_at = {position for position, _ in insertions}
    run_start = run_end = -1
    for index in sorted(deletions):
        if index == run_end and index not in inserted_at:
            run_end += 1
            continue
        if run_start >= 0:
            edits.append((run_start, run_end, ""))
        run_start, run_end = index, index + 1
    if run_start >= 0:
        edits.append((run_start, run_end, ""))
    # From the end backwards; at one place, the deletion before the insertion.
    edits.sort(key=lambda edit: (edit[0], edit[1] > edit[0]), reverse=True)
    return edits


def apply_text_edits(text: Text, current: str, edits: list[tuple[int, int, str]]) -> None:
    """Apply edits in `current`'s indexes (descending) to a pycrdt Text holding `current`."""
    for start, end, replacement in edits:
        start_byte = utf8_offset(current, start)
        if end > start:
            del text[start_byte : utf8_offset(current, end)]
        if replacement:
            text.insert(start_byte, replacement)


def merge_into_notebook(
    notebook: YNotebook,
    base: dict[str, Any],
    base_cell_ids: list[str],
    theirs: dict[str, Any],
) -> MergeReport:
    """Bring the changes base -> theirs into the document, in one transaction."""
    report = MergeReport()
    with notebook.ydoc.transaction():
        _merge_metadata(notebook, base, theirs)
        theirs_keys = _theirs_cell_keys(base, base_cell_ids, theirs)
        report.theirs_cell_ids = theirs_keys
        base_by_key = {key: cell for key, cell in zip(base_cell_ids, base["cells"], strict=False)}
        ycells: Array = notebook.ycells
        ours_position = {str(ycell.get("id")): index for index, ycell in enumerate(ycells)}

        for key, cell in zip(theirs_keys, theirs["cells"], strict=True):
            known = key in base_by_key and key in ours_position
            if known and merge_cell(ycells[ours_position[key]], base_by_key[key], cell):
                report.changed.append(key)

        theirs_set = set(theirs_keys)
        for key, base_cell in reversed(list(base_by_key.items())):
            if key in theirs_set or key not in ours_position:
                continue
            index = cell_index(ycells, key)
            if index is None:
                continue
            ours_cell = notebook.get_cell(index)
            if _same_cell(ours_cell, base_cell):
                del ycells[index]
                report.deleted.append(key)
            else:
                report.kept_despite_deletion.append(key)

        previous: str | None = None
        for key, cell in zip(theirs_keys, theirs["cells"], strict=True):
            if key not in base_by_key and cell_index(ycells, key) is None:
                after = cell_index(ycells, previous) if previous is not None else None
                new_cell = dict(cell)
                new_cell["id"] = key
                ycells.insert(0 if after is None else after + 1, new_ycell(notebook, new_cell))
                report.added.append(key)
            if cell_index(ycells, key) is not None:
                previous = key
    return report


def _theirs_cell_keys(
    base: dict[str, Any], base_cell_ids: list[str], theirs: dict[str, Any]
) -> list[str]:
    """The document cell id each of theirs' cells corresponds to (a new id if none)."""
    import uuid

    keys: list[str | None] = [cell.get("id") for cell in theirs["cells"]]
    if all(keys):
        return [str(key) for key in keys]
    # A file without cell ids (nbformat < 4.5): align its cells with base by source.
    base_sources = [cell_source(cell) for cell in base["cells"]]
    theirs_sources = [cell_source(cell) for cell in theirs["cells"]]
    matcher = SequenceMatcher(None, base_sources, theirs_sources, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for offset in range(j2 - j1):
                if i1 + offset < len(base_cell_ids):
                    keys[j1 + offset] = base_cell_ids[i1 + offset]
    return [key or uuid.uuid4().hex[:8] for key in keys]


def merge_cell(ycell: Map, base: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Bring the changes base -> theirs of one cell into the document's cell."""
    changed = False
    base_source, theirs_source = cell_source(base), cell_source(theirs)
    if base_source != theirs_source:
        text: Text = ycell["source"]
        current = str(text)
        apply_text_edits(text, current, merge_text(base_source, current, theirs_source))
        changed = True
    for key in ("cell_type", "execution_count", "metadata", "outputs", "attachments"):
        if base.get(key) == theirs.get(key):
            continue
        changed = True
        value = theirs.get(key)
        if value is None and key in ("attachments",):
            if key in ycell:
                del ycell[key]
        elif key == "metadata":
            ycell[key] = Map(value or {})
        elif key == "outputs":
            ycell[key] = Array([youtput(output) for output in value or []])
        else:
            ycell[key] = value
    return changed


def _merge_metadata(notebook: YNotebook, base: dict[str, Any], theirs: dict[str, Any]) -> None:
    base_metadata = base.get("metadata", {})
    theirs_metadata = theirs.get("metadata", {})
    if base_metadata == theirs_metadata:
        return
    ymeta: Map = notebook.ydoc.get("meta", type=Map)
    current = ymeta.get("metadata")
    merged = dict(current.to_py() if isinstance(current, Map) else current or {})
    for key in set(base_metadata) | set(theirs_metadata):
        if base_metadata.get(key) == theirs_metadata.get(key):
            continue
        if key in theirs_metadata:
            merged[key] = theirs_metadata[key]
        else:
            merged.pop(key, None)
    ymeta["metadata"] = Map(merged)


def _same_cell(ours: dict[str, Any], base: dict[str, Any]) -> bool:
    """Whether the room left a cell as the file had it (trust flags aside: the file never
    holds them)."""
    keys = ("cell_type", "outputs", "execution_count")
    ours_metadata = {k: v for k, v in ours.get("metadata", {}).items() if k != "trusted"}
    return (
        cell_source(ours) == cell_source(base)
        and ours_metadata == base.get("metadata", {})
        and all(ours.get(k) == base.get(k) for k in keys)
    )
