"""A text file behind a room (`.py`, `.md`, `.txt`, `.json`, ...): reading it, writing the
room back to it, and merging edits made to it outside the room.

The room's document is jupyter-ydoc's `YUnicode` (root Text `source`), as JupyterLab's file
editor shares it. A file is a text file if the contents API reads it in `text` format (UTF-8)
and it is no larger than `max_bytes`; anything else (binary, a directory, too large) is
refused with HTTP 400 before a room opens. The file's content is handled as `{"text": str}`
so that the writer, the watcher, the `WrittenFile` record and the store treat a text file as
they treat a notebook. Writes go through the contents manager, as `type: file, format:
text`, atomically like notebooks (atomic_save.py).

Outside edits are merged three-way (merge.merge_text): base is the text as the room last
wrote it, theirs the file, ours the document; only the characters changed base -> theirs are
applied, where they now are in the document.
"""

from __future__ import annotations

from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.services.contents.manager import ContentsManager
from jupyter_ydoc import YUnicode
from pycrdt import Text
from tornado.web import HTTPError

from .file_watcher import FileWatcher
from .merge import apply_text_edits, merge_text
from .notebook_file import FileWriter, Prepared, check_file

# Largest text file a room opens, unless configured (CRDTSync.max_text_file_bytes).
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


def text_view(content: dict[str, Any]) -> dict[str, Any]:
    """A text file's content as it is compared: the text alone."""
    return {"text": content["text"]}


async def read_text(
    contents_manager: ContentsManager, path: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, Any]:
    """The file's text as `{"text": str}`: 404 if missing, 400 for a directory, a file the
    contents API does not read as text (binary, not UTF-8), or one over `max_bytes`."""
    await check_file(contents_manager, path)
    model = await ensure_async(contents_manager.get(path, content=False, type="file"))
    size = model.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise HTTPError(
            400, f"{path!r} is too large to share as text ({size} bytes; limit {max_bytes})"
        )
    try:
        model = await ensure_async(
            contents_manager.get(path, content=True, type="file", format="text")
        )
    except HTTPError as exc:
        if exc.status_code == 400:
            raise HTTPError(400, f"{path!r} is not a text file: {exc.log_message}") from exc
        raise
    text = model.get("content")
    if not isinstance(text, str) or model.get("format") != "text":
        raise HTTPError(400, f"{path!r} is not a text file")
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise HTTPError(400, f"{path!r} is too large to share as text (limit {max_bytes} bytes)")
    return {"text": text}


def merge_into_text(text: Text, base: str, theirs: str) -> bool:
    """Bring the changes base -> theirs into the document's text, in one transaction;
    whether anything changed."""
    doc = text.doc
    with doc.transaction():
        ours = str(text)
        edits = merge_text(base, ours, theirs)
        apply_text_edits(text, ours, edits)
    return bool(edits)


class TextWriter(FileWriter):
    """The file writer (notebook_file.FileWriter) of a text file's room."""

    async def _prepare(self) -> Prepared | None:
        model = self._notebook
        assert isinstance(model, YUnicode)
        text = model.get()
        return Prepared(
            content={"text": text},
            cell_ids=[],
            model={"type": "file", "format": "text", "content": text},
        )


class TextWatcher(FileWatcher):
    """The file watcher (file_watcher.FileWatcher) of a text file's room."""

    kind = "text file"

    def __init__(self, *args: Any, text: Text, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._text = text
        self._max_bytes = max_bytes

    async def _read(self) -> dict[str, Any]:
        return await read_text(self._contents_manager, self._path, self._max_bytes)

    def _merge(self, theirs: dict[str, Any]) -> None:
        base = self._written.content["text"]
        changed = merge_into_text(self._text, base, theirs["text"])
        self._written.record(theirs, [])
        self._on_merged()
        self._log.info(
            "[persist] merged outside edits to %r%s",
            self._path,
            "" if changed else " (the room had them already)",
        )
