"""JupyterLab's session and the kernel actor share one kernel per notebook, so that the
toolbar's interrupt and restart act on the kernel that runs the cells."""

from __future__ import annotations

import asyncio
import json
import posixpath
import uuid
from typing import Any

from .test_kernel_actor import TIMEOUT, post_execute, room_status


async def open_session(jp_fetch: Any, path: str) -> dict[str, Any]:
    """What JupyterLab's session context does when it opens a notebook."""
    response = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
        ),
    )
    return json.loads(response.body)


async def start_session_as_jupyterlab(jp_fetch: Any, path: str) -> dict[str, Any]:
    """What JupyterLab 4's session context does first when it opens a notebook nobody has
    a session for (`_startSession`): a session at a fresh uuid path in the notebook's
    directory, named after the notebook."""
    body = {
        "path": posixpath.join(posixpath.dirname(path), str(uuid.uuid4())),
        "type": "notebook",
        "name": posixpath.basename(path),
        "kernel": {"name": "python3"},
    }
    response = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    return json.loads(response.body)


async def move_session_as_jupyterlab(
    jp_fetch: Any, session: dict[str, Any], path: str
) -> dict[str, Any]:
    """What it does next: the session renamed to the notebook's path."""
    response = await jp_fetch(
        "api",
        "sessions",
        session["id"],
        method="PATCH",
        body=json.dumps({"id": session["id"], "path": path}),
    )
    return json.loads(response.body)


async def session_creation_underway(jp_serverapp: Any) -> None:
    """Wait until the server is starting a session's kernel (the window for a race)."""
    pending = jp_serverapp.session_manager._pending_sessions
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while len(pending) == 0:
        assert loop.time() < deadline, "no session creation started"
        await asyncio.sleep(0.005)


async def sessions_of(jp_fetch: Any, path: str) -> list[dict[str, Any]]:
    response = await jp_fetch("api", "sessions")
    return [s for s in json.loads(response.body) if s["path"] == path]


async def test_execute_joins_the_session_jupyterlab_opened(make_notebook, connect, jp_fetch):
    make_notebook("nb.ipynb", ["1 + 1"])
    session = await open_session(jp_fetch, "nb.ipynb")
    peer = await connect("nb.ipynb")
    (msg_id,) = await peer.execute(["cell-0"])
    await peer.wait_for_execution("cell-0", msg_id, TIMEOUT)
    room = await room_status(jp_fetch, "nb.ipynb")
    assert room is not None and room["kernel"]["id"] == session["kernel"]["id"]
    assert len(await sessions_of(jp_fetch, "nb.ipynb")) == 1


async def test_a_session_opened_while_the_actor_starts_a_kernel_gets_that_kernel(
    make_notebook, connect, jp_fetch, jp_serverapp
):
    # A script asks to run a cell of a notebook nobody has open; a JupyterLab window opens
    # it while the kernel is still starting. Without care, each starts its own kernel.
    make_notebook("nb.ipynb", ["1 + 1"], kernelspec={"name": "python3", "display_name": "P"})
    execute = asyncio.ensure_future(post_execute(jp_fetch, "nb.ipynb", {"cell_id": "cell-0"}))
    await session_creation_underway(jp_serverapp)
    session = await open_session(jp_fetch, "nb.ipynb")
    await execute
    sessions = await sessions_of(jp_fetch, "nb.ipynb")
    assert [s["id"] for s in sessions] == [session["id"]]
    assert len(jp_serverapp.kernel_manager.list_kernel_ids()) == 1
    room = await room_status(jp_fetch, "nb.ipynb")
    assert room is not None and room["kernel"]["id"] == session["kernel"]["id"]


async def test_the_actor_waits_for_a_session_jupyterlab_is_opening(
    make_notebook, jp_fetch, jp_serverapp
):
    make_notebook("nb.ipynb", ["1 + 1"])
    opening = asyncio.ensure_future(open_session(jp_fetch, "nb.ipynb"))
    await session_creation_underway(jp_serverapp)
    await post_execute(jp_fetch, "nb.ipynb", {"cell_id": "cell-0"})
    session = await opening
    assert [s["id"] for s in await sessions_of(jp_fetch, "nb.ipynb")] == [session["id"]]
    assert len(jp_serverapp.kernel_manager.list_kernel_ids()) == 1
    room = await room_status(jp_fetch, "nb.ipynb")
    assert room is not None and room["kernel"]["id"] == session["kernel"]["id"]


async def test_two_jupyterlab_windows_opening_a_notebook_at_once_share_one_kernel(
    make_notebook, jp_fetch, jp_serverapp
):
    # Seen in the browser tests: two windows opened together each started a kernel, and
    # the one whose kernel the actor did not use never showed the widgets its cells made.
    make_notebook("nb.ipynb", ["1 + 1"])
    started = await asyncio.gather(
        start_session_as_jupyterlab(jp_fetch, "nb.ipynb"),
        start_session_as_jupyterlab(jp_fetch, "nb.ipynb"),
    )
    assert started[0]["id"] != started[1]["id"]
    kernel_id = started[0]["kernel"]["id"]
    assert started[1]["kernel"]["id"] == kernel_id
    assert jp_serverapp.kernel_manager.list_kernel_ids() == [kernel_id]
    for session in started:
        moved = await move_session_as_jupyterlab(jp_fetch, session, "nb.ipynb")
        assert moved["kernel"]["id"] == kernel_id
    assert len(await sessions_of(jp_fetch, "nb.ipynb")) == 2
    assert jp_serverapp.kernel_manager.list_kernel_ids() == [kernel_id]


async def test_a_jupyterlab_window_opening_while_the_actor_starts_a_kernel_gets_that_kernel(
    make_notebook, jp_fetch, jp_serverapp
):
    make_notebook("nb.ipynb", ["1 + 1"])
    execute = asyncio.ensure_future(post_execute(jp_fetch, "nb.ipynb", {"cell_id": "cell-0"}))
    await session_creation_underway(jp_serverapp)
    session = await start_session_as_jupyterlab(jp_fetch, "nb.ipynb")
    await execute
    await move_session_as_jupyterlab(jp_fetch, session, "nb.ipynb")
    room = await room_status(jp_fetch, "nb.ipynb")
    assert room is not None and room["kernel"]["id"] == session["kernel"]["id"]
    assert jp_serverapp.kernel_manager.list_kernel_ids() == [session["kernel"]["id"]]


async def test_the_actor_joins_a_jupyterlab_session_not_yet_at_the_notebooks_path(
    make_notebook, jp_fetch, jp_serverapp
):
    make_notebook("nb.ipynb", ["1 + 1"])
    session = await start_session_as_jupyterlab(jp_fetch, "nb.ipynb")
    await post_execute(jp_fetch, "nb.ipynb", {"cell_id": "cell-0"})
    room = await room_status(jp_fetch, "nb.ipynb")
    assert room is not None and room["kernel"]["id"] == session["kernel"]["id"]
    assert jp_serverapp.kernel_manager.list_kernel_ids() == [session["kernel"]["id"]]


async def test_notebooks_of_one_name_in_two_directories_get_a_kernel_each(
    make_notebook, jp_fetch, jp_serverapp
):
    make_notebook("nb.ipynb", ["1 + 1"])
    make_notebook("sub/nb.ipynb", ["2 + 2"])
    top, sub = await asyncio.gather(
        start_session_as_jupyterlab(jp_fetch, "nb.ipynb"),
        start_session_as_jupyterlab(jp_fetch, "sub/nb.ipynb"),
    )
    assert top["kernel"]["id"] != sub["kernel"]["id"]
    assert len(jp_serverapp.kernel_manager.list_kernel_ids()) == 2
