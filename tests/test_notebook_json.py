"""The file writer's incremental serialisation writes, byte for byte, what nbformat writes
for the same notebook: on the real notebooks of nbformat's, nbconvert's and nbclient's
sdists and on generated ones, after a whole first write and after edits to single cells
(only the edited cells are prepared again). A notebook whose cells are all trusted is
signed as jupyter_server signs it.

The writer runs with a real jupyter_server file contents manager on a temporary directory;
the reference is `nbformat.writes` of the document's content as `YNotebook.get` reads it,
made writable the way the writer makes it (writable.py)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from pycrdt import Map, Text

from jupyter_crdt_sync.cells import cell_source, youtput
from jupyter_crdt_sync.location import Location
from jupyter_crdt_sync.notebook_file import FileWriter, WrittenFile, file_view
from jupyter_crdt_sync.room import Room
from jupyter_crdt_sync.writable import writable_cell, writable_top

from .sdists import files_in_sdist

LOG = logging.getLogger("test_notebook_json")


def real_notebooks() -> dict[str, dict[str, Any]]:
    found = {}
    for package in ("nbformat", "nbconvert", "nbclient"):
        for member, data in sorted(files_in_sdist(package, ".ipynb").items()):
            try:
                node = nbformat.reads(data.decode(), as_version=nbformat.NO_CONVERT)
                nbformat.validate(node)
            except Exception:  # some are invalid on purpose
                continue
            if node.get("nbformat") == 4:
                found[member] = json.loads(json.dumps(node))
    assert len(found) >= 20, sorted(found)
    return found


def generated_notebook(seed: int, cells: int = 30) -> dict[str, Any]:
    rng = random.Random(seed)
    words = ["plain", "ünïcödé", "emoji 🍎", "tab\tand\\backslash", 'quote "x"', "\u2028sep", ""]

    def text(lines: int) -> str:
        return "\n".join(rng.choice(words) for _ in range(lines)) + rng.choice(["", "\n"])

    kernelspec = {"name": "python3", "display_name": "P"}
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec, "x": [1.5]})
    for index in range(cells):
        kind = rng.choice(["code", "code", "markdown", "raw"])
        if kind == "code":
            cell = nbformat.v4.new_code_cell(text(rng.randint(0, 4)), execution_count=index)
            for _ in range(rng.randint(0, 3)):
                cell.outputs.append(
                    rng.choice(
                        [
                            nbformat.v4.new_output("stream", name="stdout", text=text(3)),
                            nbformat.v4.new_output(
                                "display_data",
                                data={"text/plain": text(2), "image/png": "iVBORw0KGgo="},
                                metadata={"image/png": {"width": 10}},
                            ),
                            nbformat.v4.new_output(
                                "execute_result",
                                data={"text/html": text(3), "application/json": {"a": [1]}},
                                execution_count=index,
                            ),
                            nbformat.v4.new_output(
                                "error", ename="E", evalue=text(1), traceback=["a", "b"]
                            ),
                        ]
                    )
                )
        elif kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(text(rng.randint(0, 5)))
            if rng.random() < 0.3:
                cell.attachments = {"a.png": {"image/png": "iVBORw0KGgo=", "text/plain": "x\ny"}}
        else:
            cell = nbformat.v4.new_raw_cell(text(2), metadata={"format": "text/x"})
        cell.metadata["tags"] = rng.sample(["a", "b", "ç"], rng.randint(0, 2))
        cell["id"] = f"cell-{seed}-{index}"
        notebook.cells.append(cell)
    return json.loads(json.dumps(notebook))


class Writer:
    """A room's document and its file writer, on a real contents manager."""

    def __init__(self, root: Path, name: str, content: dict[str, Any]) -> None:
        self.path = root / name
        self.path.write_text(json.dumps(content))
        self.contents_manager = AsyncLargeFileManager(root_dir=str(root))
        self.room = Room(name, log=LOG)
        self.room.load(content)
        self.notebook = self.room.notebook
        written = WrittenFile(content, [])
        written.text = []  # not what the room would write: the first save writes
        self.writer = FileWriter(
            Location(name),
            self.notebook,
            self.contents_manager,
            written,
            delay=60,
            max_delay=60,
            log=LOG,
            loaded_content=content,
        )
        self.loaded = content

    async def save(self) -> bytes:
        self.writer.mark_changed()
        assert await self.writer.save()
        assert self.writer.last_error is None
        return self.path.read_bytes()

    def expected(self) -> bytes:
        """nbformat's serialisation of the document, made writable as the writer does."""
        content = self.notebook.get()
        for key in ("kernelspec", "language_info"):
            if key not in self.loaded.get("metadata", {}):
                content["metadata"].pop(key, None)
        top, problems = writable_top(file_view({**content, "cells": []}), self.loaded)
        assert not problems
        top["cells"] = [writable_cell(cell) for cell in content["cells"]]
        return (nbformat.writes(nbformat.from_dict(top)) + "\n").encode()

    @property
    def prepared(self) -> int:
        return self.writer._cells.prepared

    async def close(self) -> None:
        await self.writer.stop()
        self.room.close(1000, "done")


def edit_cells(notebook: Any, rng: random.Random) -> int:
    """One edit of one cell, as a peer or the kernel actor makes it; returns the cells the
    edit touched."""
    ycells = notebook.ycells
    index = rng.randrange(len(ycells))
    cell = ycells[index]
    choice = rng.choice(["source", "metadata", "output", "insert", "delete"])
    if choice == "source" and isinstance(cell.get("source"), Text):
        source = cell["source"]
        source.insert(len(source) // 2, rng.choice(["x", "ü\n", "🍎"]))
    elif choice == "output" and cell.get("cell_type") == "code":
        cell["outputs"].append(youtput({"output_type": "stream", "name": "stdout", "text": "o\n"}))
        cell["execution_count"] = rng.randint(1, 99)
    elif choice == "insert":
        new = {"cell_type": "markdown", "source": "new\ncell", "metadata": {}}
        ycells.insert(index, notebook.create_ycell({**new, "id": f"new-{rng.randrange(10**9)}"}))
    elif choice == "delete" and len(ycells) > 1:
        del ycells[index]
        return 0
    else:
        metadata = cell.get("metadata")
        if not isinstance(metadata, Map):
            return 0
        metadata["edited"] = rng.randint(0, 9)
    return 1


async def test_real_notebooks_written_byte_identical_to_nbformat(tmp_path):
    for index, (name, content) in enumerate(real_notebooks().items()):
        writer = Writer(tmp_path, f"nb{index}.ipynb", content)
        try:
            assert await writer.save() == writer.expected(), name
            assert writer.prepared == len(writer.notebook.ycells)
            target = next(
                (
                    i
                    for i, c in enumerate(writer.notebook.ycells)
                    if isinstance(c.get("source"), Text)
                ),
                None,
            )
            if target is None:
                continue
            source = writer.notebook.ycells[target]["source"]
            source.insert(len(source), "\n# edited ü")
            before = writer.prepared
            assert await writer.save() == writer.expected(), name
            assert writer.prepared == before + 1, name  # only the edited cell again
            assert cell_source(json.loads(writer.path.read_text())["cells"][target]).endswith(
                "# edited ü"
            )
        finally:
            await writer.close()


@pytest.mark.parametrize("seed", range(4))
async def test_generated_notebooks_stay_byte_identical_through_edits(tmp_path, seed):
    writer = Writer(tmp_path, "gen.ipynb", generated_notebook(seed))
    rng = random.Random(seed)
    try:
        assert await writer.save() == writer.expected()
        for _ in range(25):
            before = writer.prepared
            touched = edit_cells(writer.notebook, rng)
            assert await writer.save() == writer.expected()
            assert writer.prepared - before <= touched
    finally:
        await writer.close()


async def test_a_trusted_notebook_is_signed_as_jupyter_server_signs_it(tmp_path):
    content = generated_notebook(7, cells=5)
    for cell in content["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "safe\n"}]
    writer = Writer(tmp_path, "signed.ipynb", content)
    notary = writer.contents_manager.notary
    try:
        await writer.save()
        written = nbformat.read(str(writer.path), as_version=4)
        assert notary.check_signature(written)
        # An edit changes the signature; the new one is stored too.
        source = writer.notebook.ycells[0]["source"]
        source.insert(0, "edited ")
        await writer.save()
        edited = nbformat.read(str(writer.path), as_version=4)
        assert notary.check_signature(edited)
        assert notary.compute_signature(edited) != notary.compute_signature(written)
    finally:
        await writer.close()
