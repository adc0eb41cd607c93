from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_crdt_sync.client import RoomClient

# pytester: the pytest plugin's tests run pytest on sample notebooks and test files.
pytest_plugins = ["pytest_jupyter.jupyter_server", "pytester"]

# Short delays so that write-back and eviction happen within a test.
FAST_TIMINGS = {"save_delay": 0.05, "save_max_delay": 0.5, "eviction_delay": 0.2}


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return dict(FAST_TIMINGS)


@pytest.fixture
def jp_server_config(crdtsync_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            # pytest-jupyter adds the terminals extension, whose old handler trips the
            # auth warning that this suite treats as an error.
            "jpserver_extensions": {"jupyter_crdt_sync": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "CRDTSync": crdtsync_config,
    }


@pytest.fixture
def server_url(jp_serverapp: Any, http_server: Any, jp_http_port: int, jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def token(jp_serverapp: Any) -> str:
    return jp_serverapp.identity_provider.token


@pytest.fixture
def room_manager(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["crdtsync_room_manager"]


def write_notebook(path: Path, sources: list[str], **metadata: Any) -> Path:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def read_file(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def file_sources(path: Path) -> list[str]:
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in read_file(path)["cells"]
    ]


async def wait_for_file(path: Path, sources: list[str], timeout: float = 10.0) -> None:
    """Wait until the notebook file holds exactly these cell sources."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if file_sources(path) == sources:
                return
        except ValueError:
            pass  # caught mid-write by a writer that is not atomic
        if loop.time() > deadline:
            raise AssertionError(f"file holds {file_sources(path)!r}, expected {sources!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
def make_notebook(jp_root_dir: Path) -> Callable[..., Path]:
    def make(name: str = "nb.ipynb", sources: list[str] | None = None, **metadata: Any) -> Path:
        return write_notebook(
            jp_root_dir / name, sources if sources is not None else ["abcd"], **metadata
        )

    return make


@pytest.fixture
def connect(server_url: str, token: str, jp_asyncio_loop: Any) -> Iterator[Callable[..., Any]]:
    clients: list[RoomClient] = []

    async def open_client(path: str, **kwargs: Any) -> RoomClient:
        kwargs.setdefault("token", token)
        client = RoomClient(server_url, path, **kwargs)
        clients.append(client)
        await client.connect()
        return client

    yield open_client

    async def close_all() -> None:
        for client in clients:
            await client.disconnect()

    jp_asyncio_loop.run_until_complete(close_all())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


@pytest.fixture
def server_log(room_manager: Any) -> Iterator[_Records]:
    """What the extension logs during the test (its logger does not reach caplog)."""
    records = _Records()
    logger = room_manager._log
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)
