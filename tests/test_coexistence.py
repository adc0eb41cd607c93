"""jupyter-collaboration installed as well: the server log says so, and how to choose."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# A stand-in for jupyter-collaboration's server extension: only its name matters here.
FAKE_EXTENSION = """
def _jupyter_server_extension_points():
    return [{"module": "jupyter_server_ydoc"}]


def _load_jupyter_server_extension(serverapp):
    pass
"""


@pytest.fixture
def fake_jupyter_server_ydoc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fake_site" / "jupyter_server_ydoc"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_EXTENSION)
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "jupyter_server_ydoc", raising=False)


@pytest.fixture
def collaboration_enabled() -> bool:
    return True


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any],
    fake_jupyter_server_ydoc: None,
    collaboration_enabled: bool,
    capsys: pytest.CaptureFixture[str],  # set up before the server logs anything
) -> dict[str, Any]:
    jp_server_config["ServerApp"]["jpserver_extensions"]["jupyter_server_ydoc"] = (
        collaboration_enabled
    )
    return jp_server_config


def collaboration_warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if "jupyter-collaboration" in line]


def server_log(capsys: pytest.CaptureFixture[str]) -> str:
    # The extension logs as it starts, through the console handler that the server's
    # logging configuration installs (its loggers do not propagate to pytest's).
    return capsys.readouterr().err


async def test_enabled_jupyter_collaboration_is_named_in_the_log(jp_serverapp, capsys):
    assert "jupyter_server_ydoc" in jp_serverapp.extension_manager.extensions
    (warning,) = collaboration_warnings(server_log(capsys))
    assert "[W " in warning
    assert "jupyter_server_ydoc" in warning
    # jupyter-collaboration 3+ is a metapackage: uninstalling it alone leaves its parts.
    assert (
        "pip uninstall jupyter-collaboration jupyter-collaboration-ui jupyter-docprovider "
        "jupyter-server-ydoc" in warning
    )
    assert "@jupyter/docprovider-extension @jupyter/collaboration-extension" in warning
    assert "jupyter server extension disable jupyter_server_ydoc" in warning
    assert "jupyter server extension disable jupyter_crdt_sync" in warning


@pytest.mark.parametrize("collaboration_enabled", [False])
async def test_disabled_jupyter_collaboration_is_no_concern(jp_serverapp, capsys):
    assert "jupyter_server_ydoc" in jp_serverapp.extension_manager.extensions
    log = server_log(capsys)
    assert "[persist]" in log  # the log is captured here
    assert collaboration_warnings(log) == []
