"""What the `notebook_room` fixture gives a test: rooms on notebooks it puts on the
session's server, and a synchronous `run(cell)`.

    def test_plot(notebook_room):
        room = notebook_room(["import math", "print(math.pi)"])
        result = notebook_room.run(1)          # the second code cell of the last room
        assert result.text.startswith("3.14")

Notebooks go into the folder `fixtures/` of the server (a scratch folder on `--nb-server`)
and are deleted, with their kernels, when the test ends.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from ..client import ExecutionResult, RoomClient
from .runner import NotebookRun
from .session import PluginSession

DEFAULT_KERNEL = "python3"


class NotebookRooms:
    def __init__(self, session: PluginSession, test_name: str) -> None:
        self._session = session
        self._prefix = session.scratch + "fixtures/" + re.sub(r"[^\w.-]+", "_", test_name)
        self._runs: list[NotebookRun] = []

    def __call__(
        self, cells_or_path: list[str] | str | Path, *, kernel: str | None = None
    ) -> RoomClient:
        """A connected RoomClient on a new notebook with these code cells, or on a copy of
        the notebook file at this path."""
        if isinstance(cells_or_path, (str, Path)):
            source = Path(cells_or_path)
            content = json.loads(source.read_text(encoding="utf-8"))
            name = source.name
        else:
            content = new_notebook(list(cells_or_path))
            name = "notebook.ipynb"
        if kernel is not None:
            content = copy.deepcopy(content)
            spec = content.setdefault("metadata", {}).setdefault("kernelspec", {})
            spec.update(name=kernel, display_name=kernel)
        run = NotebookRun(self._session.api(), f"{self._prefix}-{len(self._runs)}-{name}")
        self._runs.append(run)
        self._session.run(run.open(content))
        return run.room

    def run(
        self, cell: int | str, room: RoomClient | None = None, timeout: float = 120.0
    ) -> ExecutionResult:
        """Run a cell (an index into the room's code cells, or a cell id) of `room` (the
        last one opened by default) and return its ExecutionResult."""
        if room is None:
            if not self._runs:
                raise RuntimeError("no notebook yet: call notebook_room(cells_or_path) first")
            room = self._runs[-1].room
        cell_id = room.code_cell_ids()[cell] if isinstance(cell, int) else cell
        return self._session.run(room.run(cell_id, timeout))

    def close(self) -> None:
        for run in self._runs:
            self._session.run(run.close())
        self._runs.clear()


def new_notebook(sources: list[str], kernel: str = DEFAULT_KERNEL) -> dict[str, Any]:
    """An nbformat 4.5 notebook of code cells with ids `cell-0`, `cell-1`, ..."""
    import nbformat

    cells = [nbformat.v4.new_code_cell(source, id=f"cell-{i}") for i, source in enumerate(sources)]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": kernel}
    return json.loads(nbformat.writes(notebook))
