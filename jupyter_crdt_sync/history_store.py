"""The versions of every notebook, in the store's SQLite file (tables `history_*`).

Blobs (versions.py) are kept once, zlib-compressed, however many versions share them;
a version row holds its time, authors, cells changed, its top-level hash and its chunk
hashes. Version numbers come from a per-path counter that only grows (thinning never
lowers it). Thinning deletes version rows, then every blob no kept version reaches: a kept
version never loses a blob, and a blob is only written in the transaction of the version
that needs it.

Every method runs on the store's one writer thread, inside or outside its transactions
(store.py); nothing here is called from the event loop.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from dataclasses import dataclass
from typing import Any

from .location import moved_path
from .versions import (
    EncodedVersion,
    Entry,
    RetentionPolicy,
    cells_changed,
    decode,
    decode_entries,
    encode,
    to_thin,
)

SCHEMA = """
CREATE TABLE history_blobs (hash TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE history_paths (
    path TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL,
    deleted_at REAL
);
CREATE TABLE history_versions (
    path TEXT NOT NULL,
    version INTEGER NOT NULL,
    time REAL NOT NULL,
    authors TEXT NOT NULL,
    cells_changed INTEGER NOT NULL,
    meta TEXT NOT NULL,
    chunks TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (path, version)
) WITHOUT ROWID;
"""

_BATCH = 500  # SQLite variables per IN (...) query


@dataclass(frozen=True)
class VersionRequest:
    """A version to record: the notebook as its file holds it, the document's cell ids,
    and who changed it since the previous version."""

    content: dict[str, Any]
    cell_ids: list[str]
    authors: list[str]
    note: dict[str, Any] | None = None
    time: float | None = None
    # The notebook is that of this stored version (a whole restore): nothing to encode.
    same_as: int | None = None


@dataclass
class _Latest:
    version: int
    meta: str
    chunks: list[str]
    entries: list[Entry]


class HistoryTables:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        # The newest version of each path seen since the store opened.
        self._latest: dict[str, _Latest | None] = {}
        self.errors: list[str] = []

    # -- recording -------------------------------------------------------------------------

    def record(self, path: str, request: VersionRequest) -> int | None:
        """Record a version, inside the caller's transaction: its number (the newest
        version's if it is the same notebook), or None if it cannot be recorded (the
        reason in `errors`: a bad version must not stop the store's other writes)."""
        self._db.execute("SAVEPOINT version")
        try:
            number = self._record(path, request)
        except (ValueError, TypeError, KeyError) as exc:
            self._db.execute("ROLLBACK TO version")
            self._db.execute("RELEASE version")
            self.errors.append(f"version of {path!r} not recorded: {exc!r}")
            return None
        except BaseException:
            self._latest.clear()
            raise
        self._db.execute("RELEASE version")
        return number

    def forget_cached(self) -> None:
        """The caller's transaction was rolled back: what was cached may not be stored."""
        self._latest.clear()

    def _record(self, path: str, request: VersionRequest) -> int | None:
        if request.same_as is not None:
            return self.copy(path, request.same_as, request)
        encoded = encode(request.content, request.cell_ids)
        latest = self._newest(path)
        if latest is not None and (latest.meta, latest.chunks) == (encoded.meta, encoded.chunks):
            self._db.execute("UPDATE history_paths SET deleted_at = NULL WHERE path = ?", (path,))
            return latest.version
        self._write_blobs(encoded, latest)
        return self._insert(path, request, encoded.meta, encoded.chunks, encoded.entries, latest)

    def _insert(
        self,
        path: str,
        request: VersionRequest,
        meta: str,
        chunks: list[str],
        entries: list[Entry],
        latest: _Latest | None,
    ) -> int:
        row = self._db.execute(
            "SELECT last_version FROM history_paths WHERE path = ?", (path,)
        ).fetchone()
        number = (row[0] if row else 0) + 1
        self._db.execute(
            "INSERT OR REPLACE INTO history_paths (path, last_version, deleted_at) "
            "VALUES (?, ?, NULL)",
            (path, number),
        )
        self._db.execute(
            "INSERT INTO history_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                path,
                number,
                request.time if request.time is not None else time.time(),
                json.dumps(sorted(set(request.authors))),
                cells_changed(latest.entries if latest else None, entries),
                meta,
                " ".join(chunks),
                json.dumps(request.note) if request.note else None,
            ),
        )
        self._latest[path] = _Latest(number, meta, chunks, entries)
        return number

    def _write_blobs(self, encoded: EncodedVersion, latest: _Latest | None) -> None:
        known: set[str] = set()
        if latest is not None:
            known.add(latest.meta)
            known.update(latest.chunks)
            for _, body, outputs in latest.entries:
                known.add(body)
                known.add(outputs)
        candidates = [name for name in encoded.blobs if name not in known]
        present = self._present(candidates)
        for name in candidates:
            if name not in present:
                self._db.execute(
                    "INSERT INTO history_blobs VALUES (?, ?)",
                    (name, zlib.compress(encoded.blobs[name], 6)),
                )
                present.add(name)

    def _present(self, names: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            found.update(
                row[0]
                for row in self._db.execute(
                    f"SELECT hash FROM history_blobs WHERE hash IN ({marks})", batch
                )
            )
        return found

    def _newest(self, path: str) -> _Latest | None:
        if path in self._latest:
            return self._latest[path]
        row = self._db.execute(
            "SELECT version, meta, chunks FROM history_versions WHERE path = ? "
            "ORDER BY version DESC LIMIT 1",
            (path,),
        ).fetchone()
        latest = None
        if row is not None:
            chunks = row[2].split()
            latest = _Latest(row[0], row[1], chunks, self._entries(chunks))
        self._latest[path] = latest
        return latest

    # -- reading ---------------------------------------------------------------------------

    def list(self, path: str) -> list[dict[str, Any]] | None:
        """The versions of `path`, oldest first; None if it has no history at all."""
        rows = self._db.execute(
            "SELECT version, time, authors, cells_changed, note FROM history_versions "
            "WHERE path = ? ORDER BY version",
            (path,),
        ).fetchall()
        if not rows:
            return None
        versions = []
        for number, when, authors, changed, note in rows:
            entry = {
                "version": number,
                "time": when,
                "authors": json.loads(authors),
                "cells_changed": changed,
            }
            if note:
                entry.update(json.loads(note))
            versions.append(entry)
        return versions

    def deleted_at(self, path: str) -> float | None:
        row = self._db.execute(
            "SELECT deleted_at FROM history_paths WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else row[0]

    def read(
        self, path: str, number: int, only: list[str] | None = None
    ) -> tuple[dict[str, Any], list[str], float] | None:
        """The notebook at a version, its cell ids and its time; None if there is none.
        With `only`, the other cells are left empty ({}), and not read."""
        row = self._db.execute(
            "SELECT meta, chunks, time FROM history_versions WHERE path = ? AND version = ?",
            (path, number),
        ).fetchone()
        if row is None:
            return None
        meta, chunks, when = row
        entries = self._entries(chunks.split())
        names = {meta}
        if only is not None:
            wanted = set(only)
            entries = [e if e[0] in wanted else (e[0], "", "") for e in entries]
        for _, body, outputs in entries:
            if body:
                names.add(body)
            if outputs:
                names.add(outputs)
        blobs = self._blobs(list(names))
        return decode(blobs[meta], entries, blobs), [entry[0] for entry in entries], when

    def copy(self, path: str, number: int, request: VersionRequest) -> int | None:
        """Record version `number` again, as the newest, with the request's authors, note
        and time (a whole restore: the same notebook, nothing to encode)."""
        row = self._db.execute(
            "SELECT meta, chunks FROM history_versions WHERE path = ? AND version = ?",
            (path, number),
        ).fetchone()
        if row is None:
            return None
        meta, chunks = row[0], row[1].split()
        latest = self._newest(path)
        if latest is not None and (latest.meta, latest.chunks) == (meta, chunks):
            return latest.version
        entries = self._entries(chunks)
        return self._insert(path, request, meta, chunks, entries, latest)

    def _entries(self, chunks: list[str]) -> list[Entry]:
        blobs = self._blobs(chunks)
        return decode_entries(blobs[name] for name in chunks)

    def _blobs(self, names: list[str]) -> dict[str, bytes]:
        blobs: dict[str, bytes] = {}
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            for name, data in self._db.execute(
                f"SELECT hash, data FROM history_blobs WHERE hash IN ({marks})", batch
            ):
                blobs[name] = zlib.decompress(data)
        missing = set(names) - blobs.keys()
        if missing:
            raise sqlite3.DatabaseError(f"history blobs missing: {sorted(missing)[:3]}")
        return blobs

    # -- moving, deleting, thinning ----------------------------------------------------------

    def rename(self, old: str, new: str) -> list[tuple[str, str]]:
        """Carry the histories of `old` (a notebook, or the notebooks in a folder) to their
        new paths; an earlier history at a target path is replaced. The moves made."""
        moves = []
        for (path,) in self._db.execute("SELECT path FROM history_paths").fetchall():
            target = moved_path(path, old, new)
            if target is not None and target != path:
                moves.append((path, target))
        for path, target in moves:
            self._db.execute("DELETE FROM history_versions WHERE path = ?", (target,))
            self._db.execute("DELETE FROM history_paths WHERE path = ?", (target,))
            for table in ("history_versions", "history_paths"):
                self._db.execute(f"UPDATE {table} SET path = ? WHERE path = ?", (target, path))
            self._latest.pop(target, None)
            self._latest[target] = self._latest.pop(path, None)
            if self._latest[target] is None:
                del self._latest[target]
        return moves

    def mark_deleted(self, path: str, when: float) -> None:
        self._db.execute(
            "UPDATE history_paths SET deleted_at = ? WHERE path = ? AND deleted_at IS NULL",
            (when, path),
        )

    def thin(self, policy: RetentionPolicy, keep_deleted: float, now: float) -> int:
        """Apply the retention policy to every path, drop the histories of notebooks
        deleted more than `keep_deleted` seconds ago, then the blobs no version reaches.
        Inside the caller's transaction; returns the versions dropped."""
        dropped = 0
        for path, deleted_at in self._db.execute(
            "SELECT path, deleted_at FROM history_paths"
        ).fetchall():
            if deleted_at is not None and now - deleted_at > keep_deleted:
                dropped += self._db.execute(
                    "DELETE FROM history_versions WHERE path = ?", (path,)
                ).rowcount
                self._db.execute("DELETE FROM history_paths WHERE path = ?", (path,))
                self._latest.pop(path, None)
                continue
            rows = self._db.execute(
                "SELECT version, time FROM history_versions WHERE path = ?", (path,)
            ).fetchall()
            for number in to_thin([(row[0], row[1]) for row in rows], now, policy):
                self._db.execute(
                    "DELETE FROM history_versions WHERE path = ? AND version = ?", (path, number)
                )
                dropped += 1
        if dropped:
            self._collect_garbage()
        return dropped

    def _collect_garbage(self) -> None:
        reached: set[str] = set()
        chunk_names: set[str] = set()
        for meta, chunks in self._db.execute("SELECT meta, chunks FROM history_versions"):
            reached.add(meta)
            chunk_names.update(chunks.split())
        reached |= chunk_names
        names = list(chunk_names)
        for start in range(0, len(names), _BATCH):
            blobs = self._blobs(names[start : start + _BATCH])
            for entry in decode_entries(blobs.values()):
                reached.add(entry[1])
                if entry[2]:
                    reached.add(entry[2])
        unreached = [
            name
            for (name,) in self._db.execute("SELECT hash FROM history_blobs").fetchall()
            if name not in reached
        ]
        for start in range(0, len(unreached), _BATCH):
            batch = unreached[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            self._db.execute(f"DELETE FROM history_blobs WHERE hash IN ({marks})", batch)

    def bytes_used(self) -> int:
        """The bytes of the history tables' data (blobs and version rows)."""
        blobs = self._db.execute(
            "SELECT coalesce(sum(length(data) + length(hash)), 0) FROM history_blobs"
        ).fetchone()[0]
        rows = self._db.execute(
            "SELECT coalesce(sum(length(path) + length(authors) + length(meta) + "
            "length(chunks) + coalesce(length(note), 0) + 24), 0) FROM history_versions"
        ).fetchone()[0]
        return int(blobs + rows)
