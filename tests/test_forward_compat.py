"""Notebooks written by others open in a room, and an edit writes everything else back as
the file had it: unknown keys at every level, unknown cell types without a source, a
newer nbformat_minor (nbformat's own test4plus.ipynb), and the test notebooks of nbformat
and nbconvert, read at run time from the source distributions pip fetches (never copied
into this repository)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_crdt_sync.cells import cell_source
from jupyter_crdt_sync.notebook_file import file_view

SDISTS = ("nbformat", "nbconvert")
CACHE = Path(
    os.environ.get("CRDTSYNC_SDIST_CACHE", Path.home() / ".cache" / "jupyter-crdt-sync" / "sdists")
)


@functools.cache
def real_notebooks() -> dict[str, bytes]:
    """Every nbformat 4 notebook in those sdists that nbformat reads and validates."""
    wanted = [f"{name}=={version(name)}" for name in SDISTS]
    archives = [CACHE / f"{spec.replace('==', '-')}.tar.gz" for spec in wanted]
    if not all(archive.exists() for archive in archives):
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["--no-build-isolation", "-d", str(CACHE), *wanted]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            pytest.skip(f"cannot download {wanted} with pip: {result.stderr[-500:]}")
    found = {}
    for archive in archives:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.name.endswith(".ipynb"):
                    continue
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                try:
                    node = nbformat.reads(data.decode(), as_version=nbformat.NO_CONVERT)
                    nbformat.validate(node)
                except Exception:  # some are invalid or unreadable on purpose
                    continue
                if node.get("nbformat") == 4 and node.get("cells"):
                    found[member.name] = data
    assert "nbformat-" + version("nbformat") + "/tests/test4plus.ipynb" in found
    assert len(found) >= 20, sorted(found)
    return found


def as_read(path: Path) -> dict[str, Any]:
    node = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    return file_view(json.loads(json.dumps(node)))


async def test_real_notebooks_open_and_write_back_unchanged_but_the_edit(
    connect, jp_root_dir, room_manager
):
    notebooks = real_notebooks()
    for index, (name, data) in enumerate(sorted(notebooks.items())):
        path = jp_root_dir / f"nb{index}.ipynb"
        path.write_bytes(data)
        before = as_read(path)
        peer = await connect(path.name)
        # Edit the first cell that has a source; everything else must stay as it was.
        target = next(i for i, c in enumerate(before["cells"]) if "source" in c)
        cell_id = str(peer.notebook.ycells[target]["id"])
        peer.insert_text(cell_id, len(peer.source(cell_id)), "\n# edited")
        expected = json.loads(json.dumps(before))
        expected["cells"][target]["source"] = cell_source(before["cells"][target]) + "\n# edited"
        await room_manager.save_now(path.name, peer.doc.get_state())
        after = as_read(path)
        assert after == expected, name
        await peer.disconnect()


async def test_test4plus_round_trips(connect, jp_root_dir, room_manager):
    data = real_notebooks()[f"nbformat-{version('nbformat')}/tests/test4plus.ipynb"]
    path = jp_root_dir / "test4plus.ipynb"
    path.write_bytes(data)
    raw = json.loads(data)
    assert raw["nbformat_minor"] == 99 and "extra" in raw
    assert any("source" not in cell for cell in raw["cells"])
    peer = await connect("test4plus.ipynb")
    future = next(c for c in peer.notebook.ycells if c.get("cell_type") == "future cell")
    assert "source" not in future
    first = str(peer.notebook.ycells[0]["id"])
    peer.insert_text(first, 0, "edited ")
    await room_manager.save_now("test4plus.ipynb", peer.doc.get_state())
    written = json.loads(path.read_text())
    assert written["extra"] == raw["extra"] and written["nbformat_minor"] == 99
    assert [c for c in written["cells"] if c["cell_type"] == "future cell"] == [
        c for c in raw["cells"] if c["cell_type"] == "future cell"
    ]
    assert cell_source(written["cells"][0]).startswith("edited ")
    assert room_manager.status()[0]["save_error"] is None
