"""The wheel carries the built JupyterLab extension and the server config: installing it
needs neither node nor a `jupyter labextension` step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / "jupyter_crdt_sync" / "labextension"
DATA = "jupyter_crdt_sync-{version}.data/data/"


def without_node(env: dict[str, str]) -> dict[str, str]:
    """The environment with every PATH entry that holds node or npm removed."""
    keep = [
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if not (Path(entry, "node").exists() or Path(entry, "npm").exists())
    ]
    return {**env, "PATH": os.pathsep.join(keep)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (BUILT / "static" / "style.js").exists():
        pytest.fail("the extension is not built: run `pip install -e .` (it builds it) first")
    out = tmp_path_factory.mktemp("wheel")
    env = without_node(dict(os.environ))
    assert shutil.which("node", path=env["PATH"]) is None
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, "."],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("jupyter_crdt_sync-*.whl")
    return built


def test_wheel_holds_the_extension_and_the_server_config(wheel: Path) -> None:
    version = wheel.name.split("-")[1]
    data = DATA.format(version=version)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        lab = data + "share/jupyter/labextensions/jupyter-crdt-sync/"
        assert lab + "package.json" in names
        assert lab + "install.json" in names
        assert any(n.startswith(lab + "static/remoteEntry.") for n in names)
        package = json.loads(archive.read(lab + "package.json"))
        config = json.loads(
            archive.read(data + "etc/jupyter/jupyter_server_config.d/jupyter_crdt_sync.json")
        )
    assert package["name"] == "jupyter-crdt-sync"
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert config["ServerApp"]["jpserver_extensions"] == {"jupyter_crdt_sync": True}
    # Nothing of the build tree leaks into the package itself.
    assert not any(n.startswith("jupyter_crdt_sync/labextension/") for n in names)


def test_jupyterlab_finds_the_installed_extension(wheel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    env = without_node(dict(os.environ))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            prefix,
            wheel,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        env={**env, "JUPYTER_PATH": str(prefix / "share" / "jupyter")},
        check=True,
        capture_output=True,
        text=True,
    )
    output = listing.stdout + listing.stderr
    line = next(line for line in output.splitlines() if "jupyter-crdt-sync" in line)
    assert "enabled" in line and "OK" in line, output
    assert str(prefix) in output


def test_wheel_registers_the_pytest_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert "[pytest11]\ncrdtsync = jupyter_crdt_sync.testing.plugin" in entry_points
