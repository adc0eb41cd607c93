"""A room: one shared document, the awareness of its peers, and the sync protocol.

The document is a notebook (jupyter-ydoc's `YNotebook` layout) or a text file (`YUnicode`:
root Text `source`, root Map `state`), as JupyterLab's notebook and file editor share them.
The room knows nothing about tornado or files. Frames come in through `receive`; a peer's
update is applied, looked at by the content guard (content_guard.py) and, if refused,
undone before anyone else sees it. Document changes, whoever made them (a peer, the file
watcher, the kernel actor), are encoded once in the document observer and queued to every
peer but their origin, then handed to the change listeners (the file writer).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from logging import Logger
from typing import Any, Protocol

from jupyter_ydoc import YNotebook, YUnicode
from pycrdt import Awareness, Doc, Map, Text, TransactionEvent, merge_updates

from .cells import load_notebook
from .content_guard import ContentGuard
from .location import Location
from .peer import Peer
from .protocol import (
    MessageKind,
    ProtocolError,
    create_awareness_message,
    create_moved_message,
    create_sync_message,
    create_sync_step2_message,
    create_update_message,
    parse_awareness_update,
    parse_message,
    state_vector_clients,
)

ChangeListener = Callable[[], None]
# Vets a peer's update before it is applied: raises ProtocolError to refuse it.
Admission = Callable[[bytes], None]


class Journal(Protocol):
    """Where the room's updates are made durable (store.RoomJournal)."""

    appended: int
    durable: int

    def append(self, update: bytes) -> int: ...

    def on_durable(self, listener: Callable[[int], None]) -> None: ...


@dataclass(slots=True)
class _Outgoing:
    """A frame held back until the updates it carries are durable."""

    seq: int
    frame: bytes
    exclude: Peer | None = None
    only: Peer | None = None


# The transaction origin of a peer's update: the content guard's undo manager tracks it.
_ORIGIN_PEER_UPDATE = object()
_UNDO_NOTHING = "jupyter-crdt-sync: no server-side undo"
# The author of changes made on the server: the kernel actor's outputs, merged file edits.
SERVER_ACTOR = "server"
# The state vector of an empty document (no clients): what a joining window sends.
_EMPTY_STATE_VECTOR = b"\x00"


class StaleReplicaError(ProtocolError):
    """A peer holds a copy of the notebook that does not descend from this room's history."""


class Room:
    def __init__(self, location: Location | str, *, log: Logger, text: bool = False) -> None:
        # Shared with the other parts of the open notebook: a rename changes it there.
        self._location = location if isinstance(location, Location) else Location(location)
        self.doc: Doc = Doc()
        self.model: YNotebook | YUnicode = YUnicode(self.doc) if text else YNotebook(self.doc)
        # jupyter-ydoc's undo manager tracks every transaction when no origin is named, and
        # keeps every deleted character alive for undo: the document would grow with all
        # text ever deleted. Nothing is undone on the server, so it tracks nothing.
        self.model.undo_manager.include_origin(_UNDO_NOTHING)
        # The document's `state` map (jupyter-ydoc's, shared by JupyterLab's models): the
        # server writes the save state there (`dirty`), so every window shows the same.
        self.state: Map = self.doc.get("state", type=Map)
        self.widgets = self.doc.get("widgets", type=Map)
        self.awareness = Awareness(self.doc)
        # The server is not a collaborator: it keeps no awareness state of its own.
        self.awareness.set_local_state(None)
        self.peers: set[Peer] = set()
        # Server-side work that keeps the room open without peers (RoomManager.hold).
        self.holds = 0
        # The client id under which the room's first content was created: every replica
        # that descends from this room's history has content from it.
        self.lineage: int | None = None
        self.closed = asyncio.Event()
        self.closing = False
        self._log = log
        self._change_listeners: list[ChangeListener] = []
        # Who changed the document since the history last took them (take_authors): the
        # Jupyter user names of the peers, and `actor` for changes made on the server.
        self._authors: set[str] = set()
        self.actor = SERVER_ACTOR
        # True while the server writes the save state (set_state).
        self.writing_state = False
        # Rooms whose document has rules beyond the notebook's (the settings room) set this.
        self.admit: Admission | None = None
        self._journal: Journal | None = None
        self._outbox: deque[_Outgoing] = deque()
        # A peer's update is held back until the content guard has looked at it; a refused
        # one goes out only together with its undoing (content_guard.py).
        self._holding = False
        self._held_update: bytes | None = None
        # Only notebooks have content rules; any text is a valid text file.
        self._guard = None if text else ContentGuard(self.model, _ORIGIN_PEER_UPDATE)
        # The sync step 2 that brings an empty replica up to date (a join), encoded at
        # most once per change of the document, however many peers join meanwhile.
        self._full_state_frame: bytes | None = None
        self.state_encodings = 0  # how many times it was encoded (tests count them)
        self._subscription = self.doc.observe(self._on_transaction)

    def __repr__(self) -> str:
        return f"<Room {self.path!r} peers={len(self.peers)}>"

    @property
    def path(self) -> str:
        return self._location.path

    @property
    def is_text(self) -> bool:
        return isinstance(self.model, YUnicode)

    @property
    def notebook(self) -> YNotebook:
        """The notebook of a notebook room (TypeError for a text file's room)."""
        if not isinstance(self.model, YNotebook):
            raise TypeError(f"{self.path!r} is a text file, not a notebook")
        return self.model

    @property
    def text(self) -> Text:
        """The text of a text file's room: root Text `source` (TypeError for a notebook)."""
        if not isinstance(self.model, YUnicode):
            raise TypeError(f"{self.path!r} is a notebook, not a text file")
        return self.doc.get("source", type=Text)

    # -- document ------------------------------------------------------------------------

    def load(self, content: dict[str, Any]) -> None:
        """Fill the empty document from a notebook, or a text file's `{"text": str}`; no
        peer has joined yet."""
        with self.doc.transaction():
            if isinstance(self.model, YUnicode):
                self.text.insert(0, content["text"])
            else:
                load_notebook(self.model, content)
            # Also what gives an empty text file content of the room's lineage client.
            self.state["dirty"] = False
        self.lineage = self.doc.client_id

    def restore(self, updates: list[bytes], lineage: int) -> None:
        """Fill the empty document with the stored history of this notebook's room.

        Raises ValueError if pycrdt refuses an update: the history is corrupt."""
        with self.doc.transaction():
            for update in updates:
                self.doc.apply_update(update)
        self.lineage = lineage

    def attach_journal(self, journal: Journal) -> None:
        """From now on, updates reach other peers only once the journal has them durable."""
        self._journal = journal
        journal.on_durable(self._release)

    def on_change(self, listener: ChangeListener) -> None:
        self._change_listeners.append(listener)

    def set_state(self, values: dict[str, Any]) -> None:
        """Write keys of the document's `state` map (the save state, save_state.py) in one
        transaction; nobody's edit: no author, and `writing_state` is true meanwhile so
        that change listeners can tell."""
        self.writing_state = True
        try:
            with self.doc.transaction():
                for key, value in values.items():
                    self.state[key] = value
        finally:
            self.writing_state = False

    def take_authors(self) -> list[str]:
        """Who changed the document since the last call, and forget them."""
        authors, self._authors = sorted(self._authors), set()
        return authors

    def _on_transaction(self, event: TransactionEvent) -> None:
        # Called synchronously at commit: only queue frames and flag listeners here.
        self._full_state_frame = None
        if self._holding:
            self._held_update = event.update
            return
        update = event.update
        if self._held_update is not None:
            # An undoing goes out together with what it undoes: peers never see the damage.
            update = merge_updates(self._held_update, update)
            self._held_update = None
        if not self.writing_state:
            self._authors.add(self.actor)
        self._send_update(update, exclude=None)

    def _send_update(self, update: bytes, exclude: Peer | None) -> None:
        frame = create_update_message(update)
        if self._journal is None:
            self._broadcast(frame, exclude=exclude)
        else:
            seq = self._journal.append(update)
            self._outbox.append(_Outgoing(seq, frame, exclude=exclude))
        for listener in self._change_listeners:
            listener()

    def _release(self, durable: int) -> None:
        while self._outbox and self._outbox[0].seq <= durable:
            outgoing = self._outbox.popleft()
            if outgoing.only is not None:
                outgoing.only.send(outgoing.frame)
            else:
                self._broadcast(outgoing.frame, exclude=outgoing.exclude)

    def _send_when_durable(self, peer: Peer, frame: bytes) -> None:
        """Send a frame carrying document content once all of it is durable."""
        journal = self._journal
        if journal is None or journal.durable >= journal.appended:
            peer.send(frame)
        else:
            self._outbox.append(_Outgoing(journal.appended, frame, only=peer))

    def _apply_update(self, peer: Peer, update: bytes) -> None:
        if self.admit is not None:
            self.admit(update)
        guard = self._guard
        if guard is None:
            try:
                with self.doc.transaction(origin=_ORIGIN_PEER_UPDATE):
                    self.doc.apply_update(update)
            except ValueError as exc:
                raise ProtocolError(f"update rejected by the CRDT: {exc}") from exc
            return
        self._holding = True
        guard.start()
        try:
            with self.doc.transaction(origin=_ORIGIN_PEER_UPDATE):
                self.doc.apply_update(update)
        except ValueError as exc:
            guard.finish()
            raise ProtocolError(f"update rejected by the CRDT: {exc}") from exc
        finally:
            self._holding = False
        problem = guard.finish()
        if problem is None:
            guard.forget()
            held, self._held_update = self._held_update, None
            if held is not None:
                self._authors.add(peer.user or "anonymous")
                self._send_update(held, exclude=peer)
            return
        guard.undo()
        if self._held_update is not None:
            # Nothing was undone: the document keeps the update, so every peer must get it.
            self._log.error("[sync] %r: a refused update could not be undone", self.path)
            held, self._held_update = self._held_update, None
            self._send_update(held, exclude=None)
        raise ProtocolError(f"content refused: {problem}")

    def _full_state(self) -> bytes:
        """The sync step 2 for a replica that has nothing yet: cached until the next change
        (the observer drops it), so a burst of joins costs one encoding."""
        if self._full_state_frame is None:
            self.state_encodings += 1
            self._full_state_frame = create_sync_step2_message(self.doc.get_update())
        return self._full_state_frame

    # -- peers ---------------------------------------------------------------------------

    def add_peer(self, peer: Peer) -> None:
        """Join a peer: the server speaks first with its sync step 1, then awareness."""
        if self.closing:
            raise RuntimeError(f"room {self.path!r} is closing")
        self.peers.add(peer)
        peer.send(create_sync_message(self.doc))
        if self.awareness.states:
            update = self.awareness.encode_awareness_update(list(self.awareness.states))
            peer.send(create_awareness_message(update))
        self._log.info("[room] %r joined %r (%d peers)", peer, self.path, len(self.peers))

    def remove_peer(self, peer: Peer) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        gone = [cid for cid in peer.awareness_client_ids if cid in self.awareness.states]
        if gone:
            self.awareness.remove_awareness_states(gone, origin=peer)
            # Removed states are announced as null states at the next clock.
            update = self.awareness.encode_awareness_update(gone)
            self._broadcast(create_awareness_message(update), exclude=peer)
        self._log.info("[room] %r left %r (%d peers)", peer, self.path, len(self.peers))

    def _broadcast(self, frame: bytes, exclude: Peer | None = None) -> None:
        for other in self.peers:
            if other is not exclude:
                other.send(frame)

    # -- incoming frames -----------------------------------------------------------------

    def receive(self, peer: Peer, frame: bytes) -> None:
        """Handle one frame from a peer; raises ProtocolError and changes nothing if bad."""
        message = parse_message(frame)
        kind = message.kind
        if kind is MessageKind.SYNC_STEP1:
            if not peer.sent_state_vector:
                self._check_lineage(message.payload)
                peer.sent_state_vector = True
            if message.payload == _EMPTY_STATE_VECTOR:
                self._send_when_durable(peer, self._full_state())
                return
            try:
                missing = self.doc.get_update(message.payload)
            except ValueError as exc:
                raise ProtocolError(f"bad state vector: {exc}") from exc
            self._send_when_durable(peer, create_sync_step2_message(missing))
        elif kind in (MessageKind.SYNC_STEP2, MessageKind.SYNC_UPDATE):
            if not peer.sent_state_vector:
                # Without the peer's state vector its history cannot be checked.
                raise ProtocolError("a peer must send sync step 1 before any update")
            if not peer.can_write:
                if not peer.refused_update_logged:
                    peer.refused_update_logged = True
                    self._log.warning(
                        "[sync] %r is read-only; its updates to %r are refused", peer, self.path
                    )
                return
            if message.payload != b"\x00\x00":
                self._apply_update(peer, message.payload)
        elif kind is MessageKind.AWARENESS:
            self._receive_awareness(peer, frame, message.payload)
        elif kind is MessageKind.QUERY_AWARENESS:
            update = self.awareness.encode_awareness_update(list(self.awareness.states))
            peer.send(create_awareness_message(update))
        elif kind is MessageKind.MOVED:
            raise ProtocolError("only the server tells a room's peers about moves")

    def announce_move(self, event: str) -> None:
        """Tell every peer that the file was `renamed` (to the room's path now) or
        `deleted` (protocol.MOVED)."""
        self._broadcast(create_moved_message(event, self.path))

    def _check_lineage(self, state_vector: bytes) -> None:
        clients = state_vector_clients(state_vector)
        if clients and self.lineage not in clients:
            # Merging it would add a second copy of every cell: the two histories share
            # no items, only text.
            raise StaleReplicaError(
                "this copy of the notebook comes from an earlier session of the room; "
                "reload the notebook"
            )

    def _receive_awareness(self, peer: Peer, frame: bytes, update: bytes) -> None:
        entries = parse_awareness_update(update)
        for entry in entries:
            if entry.state is None:
                peer.awareness_client_ids.discard(entry.client_id)
            else:
                peer.awareness_client_ids.add(entry.client_id)
        self.awareness.apply_awareness_update(update, origin=peer)
        # Relay the frame as it came: encoded once, sent to all.
        self._broadcast(frame, exclude=peer)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Disconnect every peer (after what is queued for it) and release the document."""
        for peer in list(self.peers):
            peer.finish(code, reason)
        self.peers.clear()
        self._change_listeners.clear()
        self.doc.unobserve(self._subscription)
        self._full_state_frame = None
        if self._guard is not None:
            self._guard.close()
        # The journal holds this room's _release: drop the link both ways, so that the
        # document is freed as soon as the manager lets go of the room, not at the next
        # run of the cycle collector.
        self._journal = None
        self._outbox.clear()
        self.closed.set()
