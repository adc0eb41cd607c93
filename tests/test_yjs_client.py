"""A stock Yjs client against the server: y-websocket's WebsocketProvider, run under node.

The interface promises that `WebsocketProvider(".../api/crdtsync/room", path, doc)` works.
tests/js/yjs_peer.mjs is such a client, driven here one JSON command at a time over its
stdin; the server runs on this test's event loop, so the node process is only ever awaited.
Text indexes sent to the JS peer are UTF-16 code units, as Yjs counts them; the Python
RoomClient counts code points.

Needs `npm ci --prefix tests/js` once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from jupyter_crdt_sync.client import RoomClient

from .conftest import file_sources

JS_DIR = Path(__file__).parent / "js"
PEER_SCRIPT = JS_DIR / "yjs_peer.mjs"
COMMAND_TIMEOUT = 15.0  # seconds for one command, the waits inside it included
WAIT = 10.0  # seconds the peers wait for a change to arrive
FILE_TIMEOUT = 5.0  # write-back happens within ~1 s with the test timings


class YjsPeer:
    """One node process running yjs_peer.mjs."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.client_id: int | None = None
        self._stderr: list[str] = []
        self._stderr_reader = asyncio.ensure_future(self._read_stderr())

    @classmethod
    async def start(cls, server_url: str, path: str, token: str) -> YjsPeer:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not on PATH; these tests need node >= 18")
        if not (JS_DIR / "node_modules" / "y-websocket").is_dir():
            pytest.fail(f"{JS_DIR / 'node_modules'} is missing: run `npm ci --prefix tests/js`")
        ws_url = "ws" + server_url.removeprefix("http").rstrip("/") + "/api/crdtsync/room"
        # The room name is the notebook path, each segment percent-encoded, `/` kept.
        process = await asyncio.create_subprocess_exec(
            node,
            str(PEER_SCRIPT),
            ws_url,
            quote(path, safe="/"),
            token,
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self._stderr.append(line.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command and return its result; a failure or a hang fails the test."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        try:
            await asyncio.wait_for(stdin.drain(), COMMAND_TIMEOUT)
            line = await asyncio.wait_for(stdout.readline(), COMMAND_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):
            await self.kill()
            pytest.fail(f"the Yjs peer did not answer {cmd!r}; its stderr:\n{self.stderr}")
        if not line:
            await self.kill()
            pytest.fail(f"the Yjs peer exited during {cmd!r}; its stderr:\n{self.stderr}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            pytest.fail(f"the Yjs peer failed {cmd!r}: {reply['error']}\nstderr:\n{self.stderr}")
        return reply

    async def connect(self) -> None:
        reply = await self.call("connect", timeout=WAIT)
        if not reply["synced"]:
            pytest.fail(f"the server refused the Yjs peer: {reply['refused']}")
        self.client_id = reply["clientId"]

    async def sources(self) -> list[str]:
        return list((await self.call("sources"))["sources"])

    async def insert(self, cell: str, utf16_index: int, text: str) -> str:
        return str((await self.call("insert", cell=cell, index=utf16_index, text=text))["source"])

    async def delete(self, cell: str, utf16_index: int, length: int) -> str:
        reply = await self.call("delete", cell=cell, index=utf16_index, length=length)
        return str(reply["source"])

    async def wait_source(self, cell: str, text: str) -> None:
        await self.call("wait_source", cell=cell, text=text, timeout=WAIT)

    async def close(self) -> None:
        """End the peer as a closing tab would: close its stdin and let it leave."""
        if self.process.returncode is None and self.process.stdin is not None:
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), COMMAND_TIMEOUT)
            except asyncio.TimeoutError:
                await self.kill()
                pytest.fail(f"the Yjs peer did not exit; its stderr:\n{self.stderr}")
        await self.kill()

    async def kill(self) -> None:
        """End the peer abruptly: its socket drops without a goodbye."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await asyncio.wait_for(self._stderr_reader, COMMAND_TIMEOUT)


StartPeer = Callable[[str], Awaitable[YjsPeer]]
MakeNotebook = Callable[..., Path]
Connect = Callable[..., Awaitable[RoomClient]]


@pytest.fixture
def yjs_peer(server_url: str, token: str, jp_asyncio_loop: Any) -> Iterator[StartPeer]:
    """Start connected Yjs peers on a notebook path; all are killed after the test."""
    peers: list[YjsPeer] = []

    async def start(path: str) -> YjsPeer:
        peer = await YjsPeer.start(server_url, path, token)
        peers.append(peer)
        await peer.connect()
        return peer

    yield start

    async def kill_all() -> None:
        for peer in peers:
            await peer.kill()

    jp_asyncio_loop.run_until_complete(kill_all())


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def wait_for_file(path: Path, expected: list[str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FILE_TIMEOUT
    while (sources := file_sources(path)) != expected:
        if loop.time() > deadline:
            raise AssertionError(
                f"{path.name} still holds {sources!r} after {FILE_TIMEOUT} s, not {expected!r}"
            )
        await asyncio.sleep(0.05)


async def wait_converged(python: RoomClient, peer: YjsPeer, path: Path, cell: str) -> str:
    """Once Python holds every edit: wait until the JS peer and the file agree with it."""
    text = python.source(cell)
    await peer.wait_source(cell, text)
    await wait_for_file(path, [python.source(cell_id) for cell_id in python.cell_ids()])
    assert python.source(cell) == text
    return text


@pytest.mark.parametrize("path", ["nb.ipynb", "sub dir/caf\u00e9 #1.ipynb"])
async def test_js_client_sees_the_cells_of_the_file(
    make_notebook: MakeNotebook, yjs_peer: StartPeer, path: str
) -> None:
    make_notebook(path, ["import os", "print('hi')\n", ""])
    peer = await yjs_peer(path)
    assert await peer.sources() == ["import os", "print('hi')\n", ""]


async def test_js_edit_reaches_python_and_the_file(
    make_notebook: MakeNotebook, connect: Connect, yjs_peer: StartPeer
) -> None:
    notebook = make_notebook("nb.ipynb", ["abcd", "x = 1"])
    python = await connect("nb.ipynb")
    peer = await yjs_peer("nb.ipynb")

    assert await peer.insert("cell-1", 5, "\ny = 2") == "x = 1\ny = 2"
    await python.wait_for(lambda r: r.source("cell-1") == "x = 1\ny = 2")
    await wait_for_file(notebook, ["abcd", "x = 1\ny = 2"])

    assert await peer.delete("cell-0", 1, 2) == "ad"
    await python.wait_for(lambda r: r.source("cell-0") == "ad")
    await wait_for_file(notebook, ["ad", "x = 1\ny = 2"])


async def test_python_edit_reaches_js(
    make_notebook: MakeNotebook, connect: Connect, yjs_peer: StartPeer
) -> None:
    make_notebook("nb.ipynb", ["abcd"])
    peer = await yjs_peer("nb.ipynb")
    python = await connect("nb.ipynb")

    python.insert_text("cell-0", 2, "XY")
    await peer.wait_source("cell-0", "abXYcd")
    python.delete_text("cell-0", 0, 3)
    await peer.wait_source("cell-0", "Ycd")


async def test_concurrent_edits_converge(
    make_notebook: MakeNotebook, connect: Connect, yjs_peer: StartPeer
) -> None:
    notebook = make_notebook("nb.ipynb", ["shared"])
    python = await connect("nb.ipynb")
    peer = await yjs_peer("nb.ipynb")

    # Certainly concurrent: the JS peer edits offline at the same spots as Python.
    await peer.call("disconnect")
    python.insert_text("cell-0", 0, "<py>")
    python.insert_text("cell-0", len("<py>shared"), "</py>")
    await peer.insert("cell-0", 0, "<js>")
    await peer.insert("cell-0", utf16_len("<js>shared"), "</js>")
    await peer.connect()
    await python.wait_for(lambda r: r.source("cell-0").count("js>") == 2)
    text = await wait_converged(python, peer, notebook, "cell-0")
    # Concurrent inserts at one spot are ordered by client id, the same way everywhere.
    assert text in {
        start + "shared" + end
        for start in ("<py><js>", "<js><py>")
        for end in ("</py></js>", "</js></py>")
    }

    # Interleaved while both are online, neither waiting for the other's edits.
    tokens: list[str] = []
    for i in range(20):
        await peer.insert("cell-0", 0, f"[j{i}]")
        current = python.source("cell-0")
        python.insert_text("cell-0", len(current) if i % 2 else 0, f"[p{i}]")
        tokens += [f"[j{i}]", f"[p{i}]"]
    await python.wait_for(lambda r: all(token in r.source("cell-0") for token in tokens))
    final = await wait_converged(python, peer, notebook, "cell-0")
    for token in tokens:
        final = final.replace(token, "", 1)
    assert final == text


async def test_non_bmp_text_is_counted_right_on_both_sides(
    make_notebook: MakeNotebook, connect: Connect, yjs_peer: StartPeer
) -> None:
    """Yjs indexes UTF-16 code units, pycrdt UTF-8 bytes: emoji must land where meant."""
    notebook = make_notebook("nb.ipynb", ["A\U0001f34eB"])  # A, red apple, B
    python = await connect("nb.ipynb")
    peer = await yjs_peer("nb.ipynb")
    assert await peer.sources() == ["A\U0001f34eB"]

    # JS: after the apple is UTF-16 index 3 (the apple is a surrogate pair).
    assert await peer.insert("cell-0", 3, "\U0001f600") == "A\U0001f34e\U0001f600B"
    await python.wait_for(lambda r: r.source("cell-0") == "A\U0001f34e\U0001f600B")

    # Python, by code point: 1 is after the A, 4 the end.
    python.insert_text("cell-0", 4, "\U0001d11e\u00fc")  # musical G clef, u-umlaut
    python.insert_text("cell-0", 1, "\u00e9")
    expected = "A\u00e9\U0001f34e\U0001f600B\U0001d11e\u00fc"
    assert python.source("cell-0") == expected
    await peer.wait_source("cell-0", expected)

    # JS again, behind the text Python wrote: delete the grinning face, append a party popper.
    await peer.delete("cell-0", utf16_len("A\u00e9\U0001f34e"), 2)
    await peer.insert("cell-0", utf16_len("A\u00e9\U0001f34eB\U0001d11e\u00fc"), "\U0001f389")
    expected = "A\u00e9\U0001f34eB\U0001d11e\u00fc\U0001f389"
    await python.wait_for(lambda r: r.source("cell-0") == expected)
    await wait_for_file(notebook, [expected])
    assert await peer.sources() == [expected]


def awareness_of(python: RoomClient, client_id: int | None) -> dict[str, Any] | None:
    assert client_id is not None
    return python.awareness.states.get(client_id)


async def test_awareness_comes_and_goes_with_the_js_client(
    make_notebook: MakeNotebook, connect: Connect, yjs_peer: StartPeer
) -> None:
    make_notebook("nb.ipynb", ["abcd"])
    python = await connect("nb.ipynb")
    python.set_awareness({"user": {"name": "python"}})

    # A JS peer that leaves as a closing tab does: it announces its state as gone.
    peer = await yjs_peer("nb.ipynb")
    js_state = {"user": {"name": "yjs", "color": "#ff0000"}, "cursor": {"cell": "cell-0"}}
    await peer.call("set_awareness", state=js_state)
    await python.wait_for(lambda r: awareness_of(r, peer.client_id) == js_state)
    await peer.call("wait_awareness", state={"user": {"name": "python"}}, timeout=WAIT)
    await peer.close()
    await python.wait_for(lambda r: awareness_of(r, peer.client_id) is None)

    # A JS peer whose connection drops without a word: the server must remove its state.
    peer = await yjs_peer("nb.ipynb")
    await peer.call("set_awareness", state=js_state)
    await python.wait_for(lambda r: awareness_of(r, peer.client_id) == js_state)
    await peer.kill()
    await python.wait_for(lambda r: awareness_of(r, peer.client_id) is None)


async def test_js_client_rejoining_a_reloaded_room_does_not_duplicate_cells(
    make_notebook: MakeNotebook, connect: Connect, yjs_peer: StartPeer, room_manager: Any
) -> None:
    """WebsocketProvider reconnects on its own, with the replica it had: after a network
    drop longer than the eviction delay, or a server restart, it meets a room loaded afresh
    from the file. Merged into that room, its replica must not double every cell; refusing
    it for good (close code 4400-4499) would at least keep the room intact."""
    notebook = make_notebook("nb.ipynb", ["abcd", "efgh"])
    peer = await yjs_peer("nb.ipynb")
    await peer.call("disconnect")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while "nb.ipynb" in room_manager.rooms:
        assert loop.time() < deadline, "the room was not evicted"
        await asyncio.sleep(0.05)

    rejoined = await peer.call("connect", timeout=WAIT)
    python = await connect("nb.ipynb")
    sources = [python.source(cell_id) for cell_id in python.cell_ids()]
    assert sources == ["abcd", "efgh"], (
        "a Yjs client that rejoined a room reloaded from the file merged its old "
        f"replica into it, and every peer now sees each cell twice: {sources}, cell ids "
        f"{python.cell_ids()} (the file hides it: jupyter_ydoc drops exact duplicates)"
    )
    if rejoined["synced"]:
        assert await peer.sources() == ["abcd", "efgh"]
    await wait_for_file(notebook, ["abcd", "efgh"])


async def test_js_client_shares_a_text_file_and_ignores_the_moves_message(
    jp_root_dir: Path, connect: Connect, yjs_peer: StartPeer, jp_fetch: Any
) -> None:
    """A stock y-websocket client on a text file's room (YUnicode: root Text `source`):
    the moves message is a type it does not know, which it skips without reconnecting."""
    (jp_root_dir / "mod.py").write_text("x = 1\n")
    peer = await yjs_peer("mod.py")
    python = await connect("mod.py")
    assert (await peer.call("file_text"))["text"] == "x = 1\n"
    await peer.call("insert_file_text", index=6, text="y = '\U0001f34e'\n")
    await python.wait_for(lambda r: r.file_text() == "x = 1\ny = '\U0001f34e'\n")

    await jp_fetch("api", "contents", "mod.py", method="PATCH", body='{"path": "renamed.py"}')
    await python.wait_for(lambda r: r.moves == [{"type": "renamed", "path": "renamed.py"}])
    # The stock client stays on the same connection, and its edits go on reaching the room,
    # now at the new path, and the renamed file.
    await peer.call("insert_file_text", index=0, text="# moved\n")
    expected = "# moved\nx = 1\ny = '\U0001f34e'\n"
    await python.wait_for(lambda r: r.file_text() == expected)
    state = await peer.call("connection")
    assert state == {"connected": True, "connections": 1}
    # It did receive the message: y-websocket logs the types it skips.
    await python.wait_for(lambda r: "Unable to compute message" in peer.stderr)
    renamed = jp_root_dir / "renamed.py"
    await python.wait_for(lambda r: renamed.read_text() == expected)
    await peer.call("wait_file_text", text=expected, timeout=WAIT)
