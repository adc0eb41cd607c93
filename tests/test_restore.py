"""restore.py on a real pycrdt document: the document becomes the version (or gets its
cells back), by id, and the notebook it reports is the one the document holds."""

from __future__ import annotations

import copy
import json
from typing import Any

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc

from jupyter_crdt_sync.notebook_file import file_view
from jupyter_crdt_sync.restore import RestoreError, restore_into


def notebook(sources: list[str]) -> tuple[dict[str, Any], list[str]]:
    content = nbformat.v4.new_notebook(metadata={"custom": 1})
    for index, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source, id=f"c{index}", execution_count=index)
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=source)]
        content.cells.append(cell)
    plain = json.loads(json.dumps(content))
    return plain, [cell["id"] for cell in plain["cells"]]


def document(content: dict[str, Any]) -> YNotebook:
    ynotebook = YNotebook(Doc())
    ynotebook.set(content)
    return ynotebook


def plain(content: dict[str, Any]) -> dict[str, Any]:
    """Without jupyter-ydoc's placeholder metadata (the writer drops it)."""
    content = file_view(content)
    content["metadata"] = {
        k: v for k, v in content["metadata"].items() if k not in ("kernelspec", "language_info")
    }
    return content


def held(ynotebook: YNotebook) -> dict[str, Any]:
    return plain(ynotebook.get())


@pytest.mark.parametrize("known", [True, False])
def test_whole_restore_makes_the_document_the_version(known: bool) -> None:
    version, ids = notebook(["a", "b", "c", "d"])
    now = copy.deepcopy(version)
    now["metadata"] = {"other": 2}
    now["cells"][1]["source"] = "B changed"
    now["cells"][2]["outputs"] = []
    del now["cells"][3]
    now["cells"].insert(0, now["cells"].pop(2))  # c2 moved to the top
    now["cells"].append(nbformat.v4.new_markdown_cell("new", id="n1"))
    now_ids = [cell["id"] for cell in now["cells"]]
    ynotebook = document(now)
    current = (now, now_ids) if known else None
    restored, restored_ids = restore_into(ynotebook, version, ids, None, current)
    assert restored_ids == ids and held(ynotebook) == version
    assert plain(restored) == version


@pytest.mark.parametrize("known", [True, False])
def test_cell_restore_puts_deleted_cells_back_in_place(known: bool) -> None:
    version, ids = notebook(["a", "b", "c", "d", "e"])
    now = copy.deepcopy(version)
    now["cells"][0]["source"] = "A kept"
    del now["cells"][3]  # d
    del now["cells"][1]  # b
    now_ids = [cell["id"] for cell in now["cells"]]
    ynotebook = document(now)
    current = (now, now_ids) if known else None
    restored, restored_ids = restore_into(ynotebook, version, ids, ["c3", "c1"], current)
    assert restored_ids == ["c0", "c1", "c2", "c3", "c4"]
    content = held(ynotebook)
    assert [cell["source"] for cell in content["cells"]] == ["A kept", "b", "c", "d", "e"]
    assert content == plain(restored)
    with pytest.raises(RestoreError):
        restore_into(ynotebook, version, ids, ["nope"], None)
    assert held(ynotebook) == content
