"""The durable update store: every room's CRDT history in one SQLite file.

Each room has a snapshot (its whole state at the last compaction) and the updates made
since, in order. Updates from all rooms are committed together, one transaction at a time
on one writer thread: while a commit runs, new updates gather for the next one, so
durability costs one fsync per batch, not per keystroke. A room learns through its journal
when its updates are durable, and only then sends them to other peers.

The store also keeps every notebook's versions (history_store.py): a version is recorded in
the same transaction as the file record that comes before each write-back, so a version
whose write completed is never lost, and compaction never touches versions.

The store also keeps, per room, the lineage (the client id of the room's first content)
and the notebook as last written to the file: the base for merging edits made to the file
while the server was not looking.

A store that cannot be written (disk full, read-only, permission denied) does not stop the
rooms: they go on in memory, the error is logged once and shown in the status, and the
unwritten updates are retried until they are written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from logging import Logger
from typing import Any

from nbformat import from_dict
from nbformat.v4.rwbase import rejoin_lines

from .cells import plain
from .history_store import SCHEMA as HISTORY_SCHEMA
from .history_store import HistoryTables, VersionRequest
from .versions import RetentionPolicy

# 1: documents and updates; 2: the history tables added.
SCHEMA_VERSION = 2
# What a stored update costs beyond its bytes (row id, path, checksum, page slack).
ROW_OVERHEAD_BYTES = 64

_SCHEMA = (
    """
CREATE TABLE documents (
    path TEXT PRIMARY KEY,
    lineage INTEGER NOT NULL,
    snapshot BLOB NOT NULL,
    snapshot_checksum INTEGER NOT NULL,
    file_fingerprint TEXT NOT NULL,
    previous_fingerprint TEXT NOT NULL,
    file_content TEXT NOT NULL
);
CREATE TABLE updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    data BLOB NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE INDEX updates_by_path ON updates (path, id);
"""
    + HISTORY_SCHEMA
)


class CorruptEntryError(Exception):
    """A room's stored history cannot be trusted."""


@dataclass(frozen=True)
class StoredRoom:
    lineage: int
    updates: list[bytes]  # the snapshot first, then the updates since, in order
    # The notebook as the room last wrote it to the file, with the document's cell ids:
    # the base for merging edits made to the file outside the room.
    file_content: dict[str, Any]
    file_cell_ids: list[str]
    # A file with one of these fingerprints is as the room left it. Two, because a crash
    # may come between recording a write and making it.
    file_fingerprints: frozenset[str]


def fingerprint(content: dict[str, Any]) -> str:
    """A digest of a notebook's content, independent of how its file is formatted: what
    the store records for a file the room did not write itself (a notebook the room was
    opened from). For a file the room wrote, it records the SHA-256 of its bytes."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _content_record(content: dict[str, Any], cell_ids: list[str]) -> tuple[list[bytes], str]:
    """The stored record of a notebook given as content, and its fingerprint."""
    record = json.dumps({"notebook": content, "cell_ids": cell_ids}).encode()
    return [record], fingerprint(content)


def _file_record(file: Iterable[bytes], cell_ids: list[str]) -> tuple[list[bytes], str]:
    """The stored record of a notebook the room writes, in pieces, and its fingerprint.

    `file` is the file's bytes in pieces (notebook_json.py): the record holds them as they
    are (a notebook file is a JSON object) and the fingerprint is their SHA-256, what
    jupyter_server's contents API reports as the file's `hash`. Runs on the writer thread:
    nothing of the size of the notebook is made in one piece, so the thread never holds
    the GIL for long (hashlib lets go of it)."""
    digest = hashlib.sha256()
    record = [b'{"cell_ids":' + json.dumps(cell_ids).encode() + b',"file":']
    for piece in file:
        digest.update(piece)
        record.append(piece)
    record.append(b"}")
    return record, digest.hexdigest()


def _notebook_of_record(record: dict[str, Any]) -> Any:
    if "file" not in record:
        return record["notebook"]  # a notebook as it is (settings, records of before)
    # Multi-line strings are lists of lines in a file: join them as nbformat reads them.
    return plain(rejoin_lines(from_dict(record["file"])))


@dataclass
class _Pending:
    path: str
    kind: str  # "update", "snapshot", "file" or "version"
    data: bytes
    journal: RoomJournal | None = None
    seq: int = 0
    done: asyncio.Future[int | None] | None = None
    # A version recorded with a "file" record, or alone ("version").
    version: VersionRequest | None = None
    # A "file" record: made on the writer thread from (the file's bytes in pieces, or
    # None for the record of `file_content`), the content, its cells' ids.
    file: tuple[list[bytes] | None, dict[str, Any], list[str]] | None = None


_BatchItem = tuple[
    str,
    str,
    bytes,
    "VersionRequest | None",
    "tuple[list[bytes] | None, dict[str, Any], list[str]] | None",
]


class Store:
    def __init__(
        self,
        path: str,
        log: Logger,
        *,
        compact_after_updates: int = 10_000,
        compact_min_bytes: int = 64 * 1024,
        retry_interval: float = 2.0,
    ) -> None:
        self.path = path
        self.error: str | None = None
        self._log = log
        self._compact_after_updates = compact_after_updates
        self._compact_min_bytes = compact_min_bytes
        self._retry_interval = retry_interval
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crdtsync-store")
        self._connection: sqlite3.Connection | None = None
        self._history: HistoryTables | None = None
        self._pending: list[_Pending] = []
        self._commit_task: asyncio.Task[None] | None = None
        self._journals: dict[str, RoomJournal] = {}

    # -- opening ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open (or create, or replace an unusable) store file; blocking, at startup."""
        if self._connection is not None:
            raise RuntimeError("store already open")
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        try:
            self._connection = self._connect_checked()
        except sqlite3.DatabaseError as exc:
            moved = self._move_aside(".corrupt")
            self._log.warning(
                "[persist] the store %s is unreadable (%s); moved it to %s and started "
                "a new one: rooms are rebuilt from their .ipynb files",
                self.path,
                exc,
                moved,
            )
            self._connection = self._connect_checked()
        except _UnknownVersionError as exc:
            moved = self._move_aside(f".version-{exc.version}")
            self._log.warning(
                "[persist] the store %s has schema version %d, this server knows %d; "
                "moved it to %s and started a new one",
                self.path,
                exc.version,
                SCHEMA_VERSION,
                moved,
            )
            self._connection = self._connect_checked()
        self._history = HistoryTables(self._connection)

    def _connect_checked(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version == 0 and tables == 0:
                connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(
                    f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            elif version == 1:
                connection.executescript(
                    f"BEGIN; {HISTORY_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            elif version != SCHEMA_VERSION:
                raise _UnknownVersionError(version)
            if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            # Checkpoint the write-ahead log every 64 pages and cut it back to 256 KiB, so
            # that the files on disk stay a small multiple of the documents.
            connection.execute("PRAGMA wal_autocheckpoint = 64")
            connection.execute("PRAGMA journal_size_limit = 262144")
            connection.execute("PRAGMA busy_timeout = 5000")
        except BaseException:
            connection.close()
            raise
        return connection

    def _move_aside(self, suffix: str) -> str:
        target = self.path + suffix
        number = 1
        while os.path.exists(target):
            target = f"{self.path}{suffix}.{number}"
            number += 1
        os.replace(self.path, target)
        for sidecar in ("-wal", "-shm"):
            if os.path.exists(self.path + sidecar):
                os.replace(self.path + sidecar, target + sidecar)
        return target

    async def close(self) -> None:
        """Write what is pending (one last try) and close the database."""
        while self._commit_task is not None:
            await asyncio.shield(self._commit_task)
        if self._pending:
            await self._commit_once()
        if self._connection is not None:
            await self._run(self._connection.close)
            self._connection = None
        self._executor.shutdown(wait=True)

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- rooms -----------------------------------------------------------------------------

    async def load(self, path: str) -> StoredRoom | None:
        """The stored history of a room; a corrupt one is moved aside and None returned."""
        try:
            return await self._run(self._load_sync, path)
        except CorruptEntryError as exc:
            moved = await self.move_aside(path)
            self._log.warning(
                "[persist] the stored history of %r is corrupt (%s); kept it as %r and "
                "rebuilt the room from the file",
                path,
                exc,
                moved,
            )
            return None
        except (sqlite3.Error, OSError) as exc:
            self._report_error(f"cannot read the store: {exc}")
            return None

    def _load_sync(self, path: str) -> StoredRoom | None:
        assert self._connection is not None
        row = self._connection.execute(
            "SELECT lineage, snapshot, snapshot_checksum, file_fingerprint, "
            "previous_fingerprint, file_content FROM documents WHERE path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        lineage, snapshot, snapshot_checksum, current, previous, file_content = row
        if zlib.crc32(snapshot) != snapshot_checksum:
            raise CorruptEntryError("snapshot checksum mismatch")
        updates = [snapshot]
        for data, checksum in self._connection.execute(
            "SELECT data, checksum FROM updates WHERE path = ? ORDER BY id", (path,)
        ):
            if zlib.crc32(data) != checksum:
                raise CorruptEntryError("update checksum mismatch")
            updates.append(data)
        try:
            record = json.loads(file_content)
            notebook, cell_ids = _notebook_of_record(record), record["cell_ids"]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptEntryError(f"unreadable file record: {exc}") from exc
        return StoredRoom(lineage, updates, notebook, cell_ids, frozenset({current, previous}))

    async def paths(self) -> list[str]:
        """The paths the store holds a history for (entries moved aside included)."""
        return await self._run(self._paths_sync)

    def _paths_sync(self) -> list[str]:
        assert self._connection is not None
        return [row[0] for row in self._connection.execute("SELECT path FROM documents")]

    async def move_aside(self, path: str) -> str:
        """Rename a room's stored history to `<path>.corrupt` (numbered if taken)."""
        return str(await self._run(self._move_entry_sync, path))

    def _move_entry_sync(self, path: str) -> str:
        assert self._connection is not None
        target = f"{path}.corrupt"
        number = 1
        while self._connection.execute(
            "SELECT 1 FROM documents WHERE path = ?", (target,)
        ).fetchone():
            target = f"{path}.corrupt.{number}"
            number += 1
        with self._transaction():
            self._connection.execute("UPDATE documents SET path = ? WHERE path = ?", (target, path))
            self._connection.execute("UPDATE updates SET path = ? WHERE path = ?", (target, path))
        return target

    async def create(
        self,
        path: str,
        lineage: int,
        state: bytes,
        file_content: dict[str, Any],
        cell_ids: list[str],
    ) -> None:
        """Start a room's history; replaces any earlier one for the path."""
        record, digest = _content_record(file_content, cell_ids)
        try:
            await self._run(self._create_sync, path, lineage, state, record[0], digest)
        except (sqlite3.Error, OSError) as exc:
            self._report_error(f"cannot write the store: {exc}")

    def _create_sync(
        self, path: str, lineage: int, state: bytes, record: bytes, digest: str
    ) -> None:
        assert self._connection is not None
        with self._transaction():
            self._connection.execute("DELETE FROM updates WHERE path = ?", (path,))
            self._connection.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (path, lineage, state, zlib.crc32(state), digest, digest, record.decode()),
            )

    async def record_file(
        self,
        path: str,
        file_content: dict[str, Any],
        cell_ids: list[str],
        version: VersionRequest | None = None,
        file: list[bytes] | None = None,
    ) -> int | None:
        """Record, durably and in order with the room's updates, the notebook the room is
        about to write to its file, and with it the `version` if one is given: the number
        of the version that holds it (the newest, if nothing changed since). With
        `file`, the file's bytes in pieces (notebook_json.py), the store keeps those, and
        their SHA-256 as the fingerprint; both are made on the writer thread."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        pending = _Pending(path, "file", b"", done=done, version=version)
        pending.file = (file, file_content, cell_ids)
        self._enqueue(pending)
        return await done

    async def record_version(self, path: str, version: VersionRequest) -> int | None:
        """Record a version of a notebook (at room open, at a restore of a deleted one)."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._enqueue(_Pending(path, "version", b"", done=done, version=version))
        return await done

    # -- history ---------------------------------------------------------------------------

    async def history(self, path: str) -> list[dict[str, Any]] | None:
        """The versions of a notebook, oldest first (None: no history at all)."""
        return await self._run(self._history_call, "list", path)

    async def read_version(
        self, path: str, number: int, only: list[str] | None = None
    ) -> tuple[dict[str, Any], list[str], float] | None:
        """The notebook at a version, its document cell ids and its time; None if none.
        With `only` (cell ids), the other cells are empty dicts."""
        return await self._run(self._history_call, "read", path, number, only)

    async def history_deleted_at(self, path: str) -> float | None:
        """When the notebook of this history was deleted (None: not deleted)."""
        return await self._run(self._history_call, "deleted_at", path)

    async def rename_history(self, old_path: str, new_path: str) -> None:
        """Carry histories to a renamed notebook or folder (whether or not a room is open)."""
        await self._run(self._in_transaction, "rename", old_path, new_path)

    async def thin_history(
        self, policy: RetentionPolicy, keep_deleted: float, now: float | None = None
    ) -> int:
        """Thin every notebook's versions by the policy; the number of versions dropped."""
        import time

        when = time.time() if now is None else now
        dropped = await self._run(self._in_transaction, "thin", policy, keep_deleted, when)
        if dropped:
            await self._run(self._vacuum)
        return int(dropped)

    async def history_bytes(self) -> int:
        return int(await self._run(self._history_call, "bytes_used"))

    def _history_call(self, method: str, *args: Any) -> Any:
        assert self._history is not None
        return getattr(self._history, method)(*args)

    def _in_transaction(self, method: str, *args: Any) -> Any:
        with self._transaction():
            return self._history_call(method, *args)

    def _vacuum(self) -> None:
        assert self._connection is not None
        self._connection.execute("PRAGMA incremental_vacuum")

    async def delete(self, path: str) -> None:
        await self._run(self._delete_sync, path)

    def _delete_sync(self, path: str) -> None:
        """Drop a room's CRDT history; its versions stay, marked deleted, to be thinned
        away after the time the server keeps deleted notebooks' histories."""
        import time

        assert self._connection is not None and self._history is not None
        with self._transaction():
            self._connection.execute("DELETE FROM updates WHERE path = ?", (path,))
            self._connection.execute("DELETE FROM documents WHERE path = ?", (path,))
            self._history.mark_deleted(path, time.time())

    async def rename(self, old_path: str, new_path: str) -> None:
        journal = self._journals.pop(old_path, None)
        if journal is not None:
            journal.path = new_path
            self._journals[new_path] = journal
        for item in self._pending:
            if item.path == old_path:
                item.path = new_path
        await self._run(self._rename_sync, old_path, new_path)

    def _rename_sync(self, old_path: str, new_path: str) -> None:
        assert self._connection is not None
        with self._transaction():
            for table in ("updates", "documents"):
                if table == "documents":
                    self._connection.execute("DELETE FROM documents WHERE path = ?", (new_path,))
                self._connection.execute(
                    f"UPDATE {table} SET path = ? WHERE path = ?", (new_path, old_path)
                )
            assert self._history is not None
            self._history.rename(old_path, new_path)

    def _transaction(self) -> _Transaction:
        assert self._connection is not None
        return _Transaction(self._connection)

    # -- the journal of updates ------------------------------------------------------------

    def journal(self, path: str, snapshot: Callable[[], bytes]) -> RoomJournal:
        """The append-only log of one open room; `snapshot` gives its whole state."""
        journal = RoomJournal(self, path, snapshot)
        journal.stored_bytes = len(snapshot())
        self._journals[path] = journal
        return journal

    def _forget_journal(self, journal: RoomJournal) -> None:
        if self._journals.get(journal.path) is journal:
            del self._journals[journal.path]

    def _enqueue(self, item: _Pending) -> None:
        self._pending.append(item)
        if self._commit_task is None:
            self._commit_task = asyncio.ensure_future(self._commit_loop())

    async def _commit_loop(self) -> None:
        try:
            # Let every update of this event-loop tick join the first batch.
            await asyncio.sleep(0)
            while self._pending:
                if not await self._commit_once():
                    await asyncio.sleep(self._retry_interval)
        finally:
            self._commit_task = None

    async def _commit_once(self) -> bool:
        batch, self._pending = self._pending, []
        try:
            versions = await self._run(
                self._write_batch, [(i.path, i.kind, i.data, i.version, i.file) for i in batch]
            )
        except (sqlite3.Error, OSError) as exc:
            self._report_error(f"cannot write the store: {exc}")
            # Keep the room going in memory; the batch is retried, in order, later.
            self._pending[:0] = batch
            self._release(batch)
            return False
        if self.error is not None:
            self._log.info("[persist] the store %s is writable again", self.path)
            self.error = None
        self._release(batch, versions)
        return True

    def _release(self, batch: list[_Pending], versions: list[int | None] | None = None) -> None:
        # After a failed write too: the rooms go on in memory (the batch is retried).
        numbers = versions if versions is not None else [None] * len(batch)
        for item, version in zip(batch, numbers, strict=True):
            if item.journal is not None:
                item.journal._durable_through(item.seq)
            if item.done is not None and not item.done.done():
                item.done.set_result(version)

    def _write_batch(self, batch: list[_BatchItem]) -> list[int | None]:
        assert self._connection is not None and self._history is not None
        try:
            return self._write_batch_once(batch)
        except BaseException:
            self._history.forget_cached()
            raise
        finally:
            for error in self._history.errors:
                self._log.error("[persist] %s", error)
            self._history.errors.clear()

    def _write_batch_once(self, batch: list[_BatchItem]) -> list[int | None]:
        assert self._connection is not None and self._history is not None
        compacted = False
        versions: list[int | None] = []
        with self._transaction():
            for path, kind, data, version, file in batch:
                versions.append(
                    self._history.record(path, version) if version is not None else None
                )
                if kind == "version":
                    continue
                if kind == "update":
                    self._connection.execute(
                        "INSERT INTO updates (path, data, checksum) VALUES (?, ?, ?)",
                        (path, data, zlib.crc32(data)),
                    )
                elif kind == "file":
                    assert file is not None
                    self._write_file_record(path, *file)
                else:
                    # A snapshot covers every update of the room queued before it.
                    self._connection.execute("DELETE FROM updates WHERE path = ?", (path,))
                    self._connection.execute(
                        "UPDATE documents SET snapshot = ?, snapshot_checksum = ? WHERE path = ?",
                        (data, zlib.crc32(data), path),
                    )
                    compacted = True
        if compacted:
            self._connection.execute("PRAGMA incremental_vacuum")
        return versions

    def _write_file_record(
        self,
        path: str,
        file: list[bytes] | None,
        content: dict[str, Any],
        cell_ids: list[str],
    ) -> None:
        assert self._connection is not None
        if file is None:
            record, digest = _content_record(content, cell_ids)
        else:
            record, digest = _file_record(file, cell_ids)
        update = (
            "UPDATE documents SET previous_fingerprint = file_fingerprint, "
            "file_fingerprint = ?, file_content = {} WHERE path = ?"
        )
        blobopen = getattr(self._connection, "blobopen", None)  # Python >= 3.11
        if blobopen is None or len(record) == 1:
            value = b"".join(record).decode()
            self._connection.execute(update.format("?"), (digest, value, path))
            return
        # Written piece by piece into a blob of its size: binding one 10 MB value copies it
        # whole while holding the GIL. A BLOB in the TEXT column is read back as bytes,
        # which json.loads takes as they are.
        size = sum(len(piece) for piece in record)
        self._connection.execute(update.format("zeroblob(?)"), (digest, size, path))
        row = self._connection.execute(
            "SELECT rowid FROM documents WHERE path = ?", (path,)
        ).fetchone()
        if row is not None:
            with blobopen("documents", "file_content", row[0]) as blob:
                for piece in record:
                    blob.write(piece)

    def _report_error(self, message: str) -> None:
        if message != self.error:
            self._log.error("[persist] %s (rooms go on in memory; retrying)", message)
        self.error = message


class RoomJournal:
    """One open room's view of the store: append updates, learn when they are durable."""

    def __init__(self, store: Store, path: str, snapshot: Callable[[], bytes]) -> None:
        self.path = path
        self.appended = 0
        self.durable = 0
        self.updates_since_compaction = 0
        # An estimate of the room's bytes in the store: its snapshot and updates since.
        self.stored_bytes = 0
        self._bytes_since_compaction = 0
        self._compact_at_bytes = store._compact_min_bytes
        self._compaction_scheduled = False
        self._store = store
        self._snapshot = snapshot
        self._listeners: list[Callable[[int], None]] = []
        self._closed = False

    def on_durable(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def append(self, update: bytes) -> int:
        """Queue an update for the next commit; returns its sequence number.

        Called from the document observer, so it does no I/O and does not read the
        document: a compaction it triggers runs at the next turn of the event loop.
        """
        self.appended += 1
        self._store._enqueue(_Pending(self.path, "update", update, self, self.appended))
        self.updates_since_compaction += 1
        self._bytes_since_compaction += len(update) + ROW_OVERHEAD_BYTES
        self.stored_bytes += len(update)
        due = (
            self.updates_since_compaction >= self._store._compact_after_updates
            or self._bytes_since_compaction > self._compact_at_bytes
        )
        if due and not self._compaction_scheduled:
            self._compaction_scheduled = True
            asyncio.get_running_loop().call_soon(self.compact)
        return self.appended

    def compact(self) -> None:
        """Replace the room's history so far with one snapshot of its state."""
        self._compaction_scheduled = False
        if self._closed:
            return
        state = self._snapshot()
        self._store._enqueue(_Pending(self.path, "snapshot", state))
        self.updates_since_compaction = 0
        self._bytes_since_compaction = 0
        self.stored_bytes = len(state)
        # The log may grow to the size of the document itself before it is squashed
        # again: the store stays a small multiple of the document however long people edit.
        self._compact_at_bytes = max(self._store._compact_min_bytes, len(state))

    def _durable_through(self, seq: int) -> None:
        if seq > self.durable:
            self.durable = seq
            for listener in self._listeners:
                listener(seq)

    def close(self) -> None:
        self._closed = True
        self._listeners.clear()
        self._store._forget_journal(self)


class _UnknownVersionError(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(f"unknown store schema version {version}")
        self.version = version


class _Transaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._connection.execute("COMMIT")
        else:
            self._connection.execute("ROLLBACK")
