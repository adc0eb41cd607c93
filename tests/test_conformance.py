"""Conformance with nbclient: real notebooks, published by others, run both through the
server's kernel actor and through nbclient on the same python3 kernel; their outputs and
execution counts must agree after a normalisation that hides only what differs between
any two runs.

The corpus is taken at test time from the sdists of the installed packages
(tests/sdists.py): nbclient's own test notebooks and IPython's examples. ipywidgets'
sdist carries no notebooks (its documentation notebooks live only in its repository).
Notebooks that cannot run offline, unattended, on a python3 kernel, or whose outputs
depend on the moment they run, are listed in SKIPPED with the reason; the table of the
last run is in docs/kernel-conformance.md (regenerate it with
`CRDTSYNC_CONFORMANCE_TABLE=docs/kernel-conformance.md pytest tests/test_conformance.py`).

Both sides run every notebook from its first cell, with no stored outputs, stopping at
the first error that is not allowed (a `raises-exception` tag), as JupyterLab's Run All
and nbclient do. Normalisation: consecutive stream outputs of one stream are joined and
`\\r`/`\\b` applied (how a kernel's prints are cut into messages is a matter of timing;
JupyterLab shows them joined), memory addresses, UUIDs, temporary file names of the
kernel's cells and widget model ids are replaced by placeholders. Nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from jupyter_crdt_sync.cells import multiline
from jupyter_crdt_sync.outputs import Terminal, fold_stream

from .conftest import FAST_TIMINGS
from .sdists import files_in_sdist

TIMEOUT = 120
# Kernels at once on each side (the CI machine has two cores).
PARALLEL = 3

# (package, directory in its sdist) whose notebooks make the corpus.
SOURCES = [
    ("nbclient", "tests/files/"),
    ("ipython", "examples/IPython Kernel/"),
]

SKIPPED = {
    "Autokill.ipynb": "kills its own kernel",
    "Interrupt.ipynb": "loops until interrupted (nbclient's test interrupts it on a timeout)",
    "Parallel Execute A.ipynb": "waits for a second notebook run at the same time",
    "Parallel Execute B.ipynb": "waits for a second notebook run at the same time",
    "Sleep1s.ipynb": "prints the times it ran at",
    "Background Jobs.ipynb": "threads whose output lands wherever the kernel is at that moment",
    "Script Magics.ipynb": "its cell magics need ruby, perl and other interpreters",
    "Plotting in the Notebook.ipynb": "needs matplotlib and numpy, and loads from the network",
    "SymPy.ipynb": "needs sympy",
    "Third Party Rich Output.ipynb": "needs pandas and sympy",
    "Trapezoid Rule.ipynb": "needs matplotlib, numpy and scipy",
    "Animations Using clear_output.ipynb": "needs matplotlib and numpy",
    "Working With External Code.ipynb": "needs matplotlib and numpy, and loads from the network",
    "Terminal Usage.ipynb": "needs PyQt4 and a terminal: shows terminal usage",
    "Index.ipynb": "an index of links, no code",
}

# Differences kept on purpose: the actor runs cells as JupyterLab does.
INTENDED = {
    "Check History in Memory.ipynb": (
        "nbclient starts its own kernel with `--HistoryManager.hist_file=:memory:`; the actor "
        "runs on the notebook's Jupyter session kernel, the one JupyterLab uses, whose "
        "history is on disk"
    ),
    "Skip Execution with Cell Tag.ipynb": (
        "nbclient skips cells tagged `skip-execution` (its `skip_cells_with_tag`); "
        "JupyterLab runs them, and so does the actor"
    ),
    "Beyond Plain Python.ipynb": (
        "help (`?`) comes back as a `page` payload of the reply: JupyterLab shows it as an "
        "output, and so does the actor; nbclient drops payloads"
    ),
}

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,16}")
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
_CELL_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py")
_MODEL_ID = re.compile(r"[0-9a-f]{32}")


def corpus() -> list[tuple[str, str, dict[str, bytes]]]:
    """(name, path in the sdist, the files of its directory) for every notebook."""
    found = []
    for package, directory in SOURCES:
        files = files_in_sdist(package, "")
        for member in sorted(files):
            top, _, inside = member.partition("/")
            if not inside.startswith(directory) or not inside.endswith(".ipynb"):
                continue
            if "/" in inside[len(directory) :]:
                continue  # a notebook of a sub-package, imported by another
            siblings = {
                name[len(top) + 1 + len(directory) :]: data
                for name, data in files.items()
                if name.startswith(f"{top}/{directory}") and ".ipynb_checkpoints" not in name
            }
            found.append((posixpath.basename(inside), member, siblings))
    return found


def prepared(data: bytes) -> nbformat.NotebookNode:
    """The notebook as both sides get it: no stored outputs, a python3 kernelspec."""
    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook


def normalised(cells: list[dict[str, Any]], directory: Path) -> list[Any]:
    """Each code cell's execution count and outputs, without run-to-run differences."""
    models: dict[str, str] = {}

    def model(match: re.Match[str]) -> str:
        return models.setdefault(match.group(0), f"MODEL_{len(models)}")

    result = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        outputs: list[dict[str, Any]] = []
        for output in cell.get("outputs", []):
            output = json.loads(json.dumps(output))
            last = outputs[-1] if outputs else None
            if output["output_type"] == "stream":
                text = multiline(output["text"])
                if last and last["output_type"] == "stream" and last["name"] == output["name"]:
                    last["raw"] += text
                    continue
                output = {"output_type": "stream", "name": output["name"], "raw": text}
            outputs.append(output)
        for output in outputs:
            if "raw" in output:
                output["text"] = fold_stream(Terminal(), output.pop("raw")).append
        count = cell.get("execution_count")
        text = json.dumps({"count": count, "outputs": outputs}, sort_keys=True)
        text = text.replace(str(directory), "<notebook directory>")
        text = _CELL_FILE.sub("<cell file>", text)
        text = _ADDRESS.sub("0xADDRESS", text)
        text = _MODEL_ID.sub(model, text)
        text = _UUID.sub("<uuid>", text)
        result.append(json.loads(text))
    return result


async def run_nbclient(notebook: nbformat.NotebookNode, directory: Path) -> list[Any]:
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(directory)}},
    )
    # Stops at the first error, as the actor's queue does.
    with contextlib.suppress(CellExecutionError):
        await client.async_execute()
    return normalised(notebook.cells, directory)


async def run_actor(connect: Any, path: str, directory: Path) -> list[Any]:
    room = await connect(path)
    try:
        await room.run_all(timeout=TIMEOUT * 2)
        return normalised(room.content()["cells"], directory)
    finally:
        await room.disconnect()


def first_difference(ours: list[Any], theirs: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            ours_text, theirs_text = json.dumps(a)[:300], json.dumps(b)[:300]
            return f"code cell {index}: actor {ours_text} / nbclient {theirs_text}"
    return ""


@pytest.fixture
def crdtsync_config() -> dict[str, Any]:
    return {**FAST_TIMINGS, "eviction_delay": 5}


# About 80 s on two cores: 25 notebooks, each on two kernels.
@pytest.mark.timeout(300)
async def test_the_kernel_actor_runs_notebooks_as_nbclient_does(
    jp_root_dir: Path, tmp_path: Path, connect: Any
) -> None:
    notebooks = corpus()
    assert len(notebooks) > 20, "the corpus should hold nbclient's and IPython's notebooks"
    rows: list[tuple[str, str, str]] = []
    runnable = []
    for index, (name, member, siblings) in enumerate(notebooks):
        if name in SKIPPED:
            rows.append((member, "skipped", SKIPPED[name]))
            continue
        # Each notebook in a directory of its own, with the files beside it.
        for side in (jp_root_dir, tmp_path / "nbclient"):
            folder = side / f"nb{index}"
            for relative, data in siblings.items():
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        notebook = prepared(siblings[name])
        nbformat.write(notebook, str(jp_root_dir / f"nb{index}" / name))
        runnable.append((index, name, member, notebook))

    limit = asyncio.Semaphore(PARALLEL)

    async def both(index: int, name: str, notebook: nbformat.NotebookNode) -> tuple[Any, Any]:
        async with limit:
            theirs_task = asyncio.ensure_future(
                run_nbclient(nbformat.from_dict(notebook), tmp_path / "nbclient" / f"nb{index}")
            )
            ours = await run_actor(connect, f"nb{index}/{name}", jp_root_dir / f"nb{index}")
            return ours, await theirs_task

    results = await asyncio.gather(
        *(both(index, name, notebook) for index, name, _, notebook in runnable)
    )
    differences = []
    for (_, _, member, _), (ours, theirs) in zip(runnable, results, strict=True):
        difference = first_difference(ours, theirs)
        name = posixpath.basename(member)
        if name in INTENDED:
            # Documented in docs/kernel-conformance.md; if it ever agrees, say so.
            assert difference, f"{member} now agrees with nbclient: drop it from INTENDED"
            rows.append((member, "different (intended)", INTENDED[name]))
            continue
        rows.append((member, "different" if difference else "same", difference))
        if difference:
            differences.append(f"{member}: {difference}")
    table_path = os.environ.get("CRDTSYNC_CONFORMANCE_TABLE")
    if table_path:
        write_table(Path(table_path), rows)
    assert not differences, "\n".join(differences)


def write_table(path: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = ["| notebook | result | why |", "| --- | --- | --- |"]
    for member, result, why in sorted(rows):
        lines.append(f"| `{member}` | {result} | {why.replace('|', '/')} |")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = "<!-- conformance table -->", "<!-- end of the conformance table -->"
    table = "\n".join([start, *lines, end])
    if start in text and end in text:
        text = text[: text.index(start)] + table + text[text.index(end) + len(end) :]
    else:
        text += "\n" + table + "\n"
    path.write_text(text, encoding="utf-8")
