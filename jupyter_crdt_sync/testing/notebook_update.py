"""`--nb-update`: writing the outputs of a run back into the notebook file.

Only `outputs` and `execution_count` of the cells that ran change. The file is read again
right before the write, and a cell whose source changed since the run began (someone
edited the notebook meanwhile) keeps what it has: its new outputs would belong to other
code. Nothing else in the file changes.

Where the write goes:
- if a Jupyter server on this machine with jupyter-crdt-sync has the notebook open in a
  room (found as `jupyter server list` finds servers), the notebook is saved through that
  server's contents API: its room takes the new outputs in at once, as for any save, and
  its windows show them; the file write is the server's;
- otherwise the file is replaced atomically (a temporary file renamed over it), and a room
  opened later, or one on a server we could not see, merges it as an outside edit.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat

from ..cells import cell_source


@dataclass(frozen=True)
class NewOutputs:
    index: int  # the cell's position in the notebook
    source: str  # the source that ran
    outputs: list[dict[str, Any]]
    execution_count: int | None


def write_outputs(path: Path, updates: list[NewOutputs]) -> list[int]:
    """Write these outputs into the notebook at `path`; the positions of the cells left
    alone because their source changed since the run."""
    notebook = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    cells = notebook.get("cells", [])
    stale = []
    for update in updates:
        cell = cells[update.index] if update.index < len(cells) else None
        if cell is None or cell.get("cell_type") != "code" or cell_source(cell) != update.source:
            stale.append(update.index)
            continue
        cell["outputs"] = [nbformat.from_dict(output) for output in update.outputs]
        cell["execution_count"] = update.execution_count
    text = nbformat.writes(notebook) + "\n"
    if not _save_through_room(path, json.loads(text)):
        from ..atomic_save import replace_writing

        with replace_writing(str(path)) as file:
            file.write(text)
    return stale


def _save_through_room(path: Path, content: dict[str, Any]) -> bool:
    """Save through the contents API of a local server whose room has the notebook open."""
    from jupyter_server.serverapp import list_running_servers

    real = os.path.realpath(path)
    for server in list_running_servers():
        root = os.path.realpath(server.get("root_dir", ""))
        if not root or os.path.commonpath([root, real]) != root:
            continue
        api_path = Path(os.path.relpath(real, root)).as_posix()
        url, token = server["url"], server.get("token", "")
        try:
            status = _call(url, token, "GET", "api/crdtsync/status")
            if not any(room.get("path") == api_path for room in status.get("rooms", [])):
                continue
            body = {"type": "notebook", "format": "json", "content": content}
            _call(url, token, "PUT", "api/contents/" + quote(api_path, safe="/"), body)
            return True
        except (urllib.error.URLError, OSError, ValueError):
            continue  # not ours, gone, or refused: the file write below is safe too
    return False


def _call(url: str, token: str, method: str, endpoint: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url.rstrip("/") + "/" + endpoint,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")
