"""The pytest plugin, run as users run it (pytester): `--nb-outputs` on real notebooks
through a real server's kernel actor, and the fixtures in a sample test file.

Most runs share one server (`--nb-server`) to keep the suite quick; one run and the xdist
run start their own, as a user's plain `pytest --nb-outputs` does.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_crdt_sync.testing.server import LocalServer

PLUGIN = "jupyter_crdt_sync.testing.plugin"
# Until the package is reinstalled, the entry point may not be registered yet.
PLUGIN_ARGS = (
    [] if any(ep.value == PLUGIN for ep in entry_points(group="pytest11")) else ["-p", PLUGIN]
)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("shared-root")) as server:
        yield server


def png(width: int, height: int, shade: int) -> bytes:
    """A grey PNG of this size, made by hand (no imaging library needed)."""
    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x00\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def cell(
    source: str,
    outputs: list[dict[str, Any]] | None = None,
    tags: list[str] | None = None,
    count: int | None = 1,
) -> Any:
    made = nbformat.v4.new_code_cell(source)
    made.outputs = [nbformat.from_dict(o) for o in outputs or []]
    made.execution_count = count
    if tags:
        made.metadata["tags"] = tags
    return made


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def result(plain: str, count: int = 1) -> dict[str, Any]:
    return {
        "output_type": "execute_result",
        "data": {"text/plain": plain},
        "metadata": {},
        "execution_count": count,
    }


def write(path: Path, cells: list[Any], **metadata: Any) -> Path:
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.metadata.update(metadata)
    nbformat.write(notebook, str(path))
    return path


def run_shared(pytester: pytest.Pytester, server: LocalServer, *args: str) -> Any:
    return pytester.runpytest(
        *PLUGIN_ARGS, "--nb-server", server.url, "--nb-token", server.token, *args
    )


def test_a_passing_notebook_on_a_server_of_its_own(pytester: pytest.Pytester) -> None:
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "data.txt").write_text("read from the notebook's folder\n")
    write(
        pytester.path / "sub" / "good.ipynb",
        [
            cell("x = 6 * 7", count=1),
            cell(
                "print('x is', x)\nprint(object())",
                [stdout("x is 42\n<object object at 0x7f0123456789>\n")],
            ),
            cell("x", [result("42")]),
            # The kernel starts in the notebook's own folder, as in JupyterLab.
            cell("print(open('data.txt').read())", [stdout("read from the notebook's folder\n\n")]),
        ],
    )
    outcome = pytester.runpytest(*PLUGIN_ARGS, "--nb-outputs", "-v")
    outcome.assert_outcomes(passed=4)
    outcome.stdout.fnmatch_lines(["*good.ipynb::cell_2 PASSED*", "*good.ipynb::cell_4 PASSED*"])


def test_a_wrong_stored_output_fails_one_item_with_a_diff(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    image = base64.b64encode(png(4, 3, 200)).decode()
    show = "from IPython.display import Image, display\nimport base64\n"
    write(
        pytester.path / "wrong.ipynb",
        [
            cell("print('first')", [stdout("first\n")]),
            cell("print('a\\nb\\nc')", [stdout("a\nWRONG\nc\n")]),
            cell(
                show + f"display(Image(data=base64.b64decode({image!r})))",
                [
                    {
                        "output_type": "display_data",
                        "data": {
                            "image/png": base64.b64encode(png(4, 3, 10)).decode(),
                            "text/plain": "<IPython.core.display.Image object>",
                        },
                        "metadata": {},
                    }
                ],
            ),
        ],
    )
    report = pytester.path / "report" / "diff.html"
    outcome = run_shared(pytester, shared_server, "--nb-outputs", "--nb-diff-html", str(report))
    outcome.assert_outcomes(passed=1, failed=2)
    outcome.stdout.fnmatch_lines(
        [
            "*wrong.ipynb cell 2 * [[]stdout[]], line 2:",
            "*(stored)",
            "*(new)",
            "-WRONG",
            "+b",
            "*wrong.ipynb cell 3 * the image differs: stored 4x3 px, * new 4x3 px, *",
        ]
    )
    page = report.read_text()
    assert page.count("<img") == 2 and image in page
    assert "wrong.ipynb::cell_2" in page


def test_skip_ignore_and_raises_exception(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    write(
        pytester.path / "tags.ipynb",
        [
            cell("import os; os._exit(3)", tags=["nb-outputs-skip"]),
            cell(
                "import random; print(random.random())",
                [stdout("0.5\n")],
                ["nb-outputs-ignore-output"],
            ),
            cell(
                "1 / 0",
                [
                    {
                        "output_type": "error",
                        "ename": "ZeroDivisionError",
                        "evalue": "division by zero",
                        "traceback": [],
                    }
                ],
                ["raises-exception"],
            ),
            cell(
                "# NBVAL_RAISES_EXCEPTION\nraise KeyError('k')",
                [{"output_type": "error", "ename": "KeyError", "evalue": "'k'", "traceback": []}],
            ),
            cell("print('still running')", [stdout("still running\n")]),
            cell("1 + 1", [result("2")], ["raises-exception"]),
            cell("undefined_name", []),
        ],
    )
    outcome = run_shared(pytester, shared_server, "--nb-outputs", "-rs")
    outcome.assert_outcomes(passed=4, failed=2, skipped=1)
    outcome.stdout.fnmatch_lines(
        [
            "*tags.ipynb cell 6 * is tagged raises-exception but raised nothing*",
            "*tags.ipynb cell 7 * raised an exception:*",
            "*NameError*undefined_name*",
            "*SKIPPED*cell tagged nb-outputs-skip*",
        ]
    )


def test_nb_update_writes_the_new_outputs(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    path = write(
        pytester.path / "stale.ipynb",
        [
            cell("print('same')", [stdout("same\n")], count=1),
            cell("print('new value')", [stdout("old value\n")], count=7),
            cell("'never run'", [], count=None),
        ],
        custom={"kept": True},
    )
    before = json.loads(path.read_text())
    run_shared(pytester, shared_server, "--nb-outputs", "--nb-update").assert_outcomes(passed=3)
    after = json.loads(path.read_text())
    assert after["metadata"]["custom"] == {"kept": True}
    assert after["cells"][0] == before["cells"][0]
    assert after["cells"][1]["outputs"][0]["text"] == ["new value\n"]
    assert after["cells"][1]["execution_count"] == 2
    assert "".join(after["cells"][2]["outputs"][0]["data"]["text/plain"]) == "'never run'"
    assert [c["source"] for c in after["cells"]] == [c["source"] for c in before["cells"]]


def test_a_hanging_cell_fails_at_its_timeout(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    write(
        pytester.path / "hangs.ipynb",
        [
            cell("print('before')", [stdout("before\n")]),
            cell("import time\nprint('sleeping', flush=True)\ntime.sleep(600)", []),
            cell("print('after')", [stdout("after\n")]),
        ],
        **{"nb-outputs": {"timeout": 3}},
    )
    started = time.monotonic()
    outcome = run_shared(pytester, shared_server, "--nb-outputs")
    assert time.monotonic() - started < 60
    outcome.assert_outcomes(passed=1, failed=2)
    outcome.stdout.fnmatch_lines(
        [
            "*hangs.ipynb cell 2 * timed out after 3 s; the kernel was interrupted*",
            "sleeping",
            "*hangs.ipynb cell 3 * was not run: hangs.ipynb cell 2 * timed out after 3 s*",
        ]
    )


def test_a_crashed_kernel_fails_the_remaining_cells(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    write(
        pytester.path / "crash.ipynb",
        [
            cell("print('alive')", [stdout("alive\n")]),
            cell("import os\nos._exit(1)", []),
            cell("print('after')", [stdout("after\n")]),
            cell("print('later')", [stdout("later\n")]),
        ],
    )
    outcome = run_shared(pytester, shared_server, "--nb-outputs")
    outcome.assert_outcomes(passed=1, failed=3)
    outcome.stdout.fnmatch_lines(
        [
            "*crash.ipynb cell 2 *: the kernel died*",
            "*crash.ipynb cell 3 * was not run: the kernel died while crash.ipynb cell 2 * ran*",
        ]
    )


def test_k_runs_the_earlier_cells_first_x_stops_and_nb_kernel_chooses(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    write(
        pytester.path / "order.ipynb",
        [
            cell("x = 1", count=1),
            cell("x += 1\nprint(x)", [stdout("2\n")]),
            cell("print(x * 10)", [stdout("20\n")]),
        ],
    )
    write(pytester.path / "bad.ipynb", [cell("print(1)", [stdout("2\n")])])
    outcome = run_shared(pytester, shared_server, "--nb-outputs", "-k", "order and cell_3")
    outcome.assert_outcomes(passed=1, deselected=3)
    outcome = run_shared(pytester, shared_server, "--nb-outputs", "-x", "bad.ipynb", "order.ipynb")
    outcome.assert_outcomes(failed=1)
    outcome = run_shared(
        pytester, shared_server, "--nb-outputs", "--nb-kernel", "nope", "bad.ipynb"
    )
    outcome.assert_outcomes(failed=1)
    outcome.stdout.fnmatch_lines(["*HTTP 400: The notebook's kernel 'nope' is not installed*"])


# How long the kernel running this cell has existed (Linux: its start, in clock ticks
# after boot, against the time since boot).
KERNEL_AGE = """import os
fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
age = float(open("/proc/uptime").read().split()[0]) - started
age > 5"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the kernel's age in /proc")
def test_the_next_notebooks_kernel_starts_while_the_previous_one_runs(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    write(pytester.path / "a_first.ipynb", [cell("import time\ntime.sleep(8)")])
    # Started at its first cell, the second kernel would be a few seconds old there; started
    # while the first notebook sleeps, it is older than the sleep's most part.
    write(pytester.path / "b_second.ipynb", [cell(KERNEL_AGE, [result("True")])])
    outcome = run_shared(pytester, shared_server, "--nb-outputs", "-v")
    outcome.assert_outcomes(passed=2)


@pytest.mark.timeout(300)  # two servers and two kernels start at once: slow when busy
def test_xdist_two_workers_each_with_a_server(pytester: pytest.Pytester) -> None:
    for name in ("one", "two"):
        write(
            pytester.path / f"{name}.ipynb",
            [
                cell(f"print({name!r})", [stdout(f"{name}\n")]),
                cell("import os\nos.getpid() > 0", [result("True")]),
            ],
        )
    outcome = pytester.runpytest_subprocess(*PLUGIN_ARGS, "--nb-outputs", "-n", "2", "-v")
    outcome.assert_outcomes(passed=4)
    # Whole notebooks per worker: both cells of each notebook on one worker.
    lines = [line for line in outcome.outlines if "PASSED" in line and "::cell_" in line]
    workers = {}
    for line in lines:
        worker = line.split("]")[0]
        notebook = line.split("::")[0].split()[-1]
        workers.setdefault(notebook, set()).add(worker)
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), lines


SAMPLE_TESTS = """
import base64


def test_server(crdtsync_server):
    assert crdtsync_server.url.startswith("http://127.0.0.1:")
    assert crdtsync_server.token


def test_cells(notebook_room):
    room = notebook_room(["x = 21", "print(x * 2)", "x / 0", "y = 1"])
    assert len(room.code_cell_ids()) == 4
    assert notebook_room.run(0).status == "ok"
    result = notebook_room.run(1)
    assert result.text == "42\\n" and result.stdout == "42\\n"
    error = notebook_room.run(room.code_cell_ids()[2]).error
    assert error["ename"] == "ZeroDivisionError"


def test_existing_file(notebook_room, request):
    room = notebook_room(request.config.rootpath / "existing.ipynb")
    result = notebook_room.run(0, room=room)
    assert base64.b64decode(result.data["image/png"]).startswith(b"\\x89PNG")
    assert "Image" in result.text
"""


def test_fixtures_in_a_sample_test_file(
    pytester: pytest.Pytester, shared_server: LocalServer
) -> None:
    image = base64.b64encode(png(2, 2, 128)).decode()
    write(
        pytester.path / "existing.ipynb",
        [
            cell(
                "from IPython.display import Image\nimport base64\n"
                f"Image(data=base64.b64decode({image!r}))"
            )
        ],
    )
    pytester.makepyfile(test_sample=SAMPLE_TESTS)
    run_shared(pytester, shared_server, "-v").assert_outcomes(passed=3)
