"""The pytest plugin (entry point `pytest11`: `crdtsync`): notebook output tests run
through the server's kernel actor, and fixtures for writing kernel output tests.

    pytest --nb-outputs notebooks/          # each .ipynb a test file, each code cell a test
    pytest --nb-outputs --nb-update nb.ipynb   # store the new outputs in the notebook

Loaded into every pytest run of an environment that has the package, it only registers
its options and fixtures: no server starts, and nothing heavy is imported, unless
`--nb-outputs` is given or a test asks for a fixture.

A cell item runs every code cell before it that has not run yet (so `-k` and `-x` keep
the notebook's order and state), compares its outputs with the stored ones (compare.py)
and fails with a readable diff. The notebook itself runs as a scratch copy (runner.py);
`--nb-update` writes back at the end of the notebook (notebook_update.py).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..cells import cell_source
from .settings import IGNORE_OUTPUT, RAISES_EXCEPTION, SKIP, NbOutputsSettings, load_settings

_SESSION = pytest.StashKey["Any"]()
_SETTINGS = pytest.StashKey[NbOutputsSettings]()
_RUN = pytest.StashKey["NotebookState"]()
DIFF_PROPERTY = "nb_outputs_diff"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nb-outputs", "notebook output tests (jupyter-crdt-sync)")
    group.addoption(
        "--nb-outputs",
        action="store_true",
        help="collect .ipynb files: run each code cell through a server's kernel actor and "
        "compare its outputs with the stored ones",
    )
    group.addoption(
        "--nb-server",
        metavar="URL",
        help="use this running Jupyter server (with jupyter-crdt-sync) instead of starting one",
    )
    group.addoption("--nb-token", metavar="TOKEN", help="the token of --nb-server")
    group.addoption(
        "--nb-kernel", metavar="NAME", help="run every notebook on this kernel (a kernelspec name)"
    )
    group.addoption(
        "--nb-update",
        action="store_true",
        help="write the new outputs into the notebooks instead of failing on differences",
    )
    group.addoption(
        "--nb-diff-html",
        metavar="PATH",
        help="write an HTML report of the differences, images side by side",
    )
    group.addoption(
        "--nb-timeout",
        metavar="SECONDS",
        type=float,
        help="seconds a cell may run before it fails and the kernel is interrupted "
        "(default: timeout in [tool.crdtsync.nb-outputs], else 120)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("nb_outputs"):
        return
    pyproject = config.rootpath / "pyproject.toml"
    try:
        config.stash[_SETTINGS] = load_settings(pyproject)
    except (ValueError, OSError) as exc:
        raise pytest.UsageError(str(exc)) from None
    target = config.getoption("nb_diff_html")
    if target and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DiffReport(Path(target)), "crdtsync-nb-diff-html")
    # A cell needs the cells before it: under xdist, hand out whole notebooks.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadfile"


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def _session(config: pytest.Config) -> Any:
    if _SESSION not in config.stash:
        from .session import PluginSession

        config.stash[_SESSION] = PluginSession(
            config.getoption("nb_server"), config.getoption("nb_token")
        )
    return config.stash[_SESSION]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".ipynb" and parent.config.getoption("nb_outputs"):
        return NotebookFile.from_parent(parent, path=file_path)
    return None


class CellFailure(Exception):
    """A cell's failure, told as text (no Python traceback of the plugin)."""


class NotebookFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            self.notebook = json.loads(self.path.read_text(encoding="utf-8"))
            cells = self.notebook["cells"]
        except (ValueError, KeyError, TypeError) as exc:
            raise self.CollectError(f"{self.path} is not a readable notebook: {exc}") from None
        for index, cell in enumerate(cells):
            if cell.get("cell_type") == "code" and cell_source(cell).strip():
                yield CellItem.from_parent(self, name=f"cell_{index + 1}", index=index)

    def scratch_run(self) -> Any:
        """The run of this notebook's scratch copy on the session's server (runner.py)."""
        from .runner import NotebookRun

        kernel_root = _kernel_root(self.session)
        session = _session(self.config)
        relative = Path(os.path.relpath(self.path, kernel_root)).as_posix()
        return NotebookRun(session.api(kernel_root), session.scratch + relative)

    def scratch_content(self) -> dict[str, Any]:
        kernel = self.config.getoption("nb_kernel") or self.config.stash[_SETTINGS].kernel
        return _scratch_copy(self.notebook, kernel)

    def teardown(self) -> None:
        state = self.stash.get(_RUN, None)
        if state is not None:
            del self.stash[_RUN]
            state.close()

    def state(self) -> NotebookState:
        if _RUN not in self.stash:
            self.stash[_RUN] = NotebookState(self)
        return self.stash[_RUN]


class CellItem(pytest.Item):
    def __init__(self, *, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    @property
    def notebook_file(self) -> NotebookFile:
        assert isinstance(self.parent, NotebookFile)
        return self.parent

    def runtest(self) -> None:
        settings = self.config.stash[_SETTINGS]
        cell = self.notebook_file.notebook["cells"][self.index]
        flags = settings.cell_flags(cell)
        if SKIP in flags:
            pytest.skip("cell tagged nb-outputs-skip")
        state = self.notebook_file.state()
        outcome = state.outcome(self.index)
        name = state.cell_name(self.index)
        result = outcome.result
        if outcome.status == "timeout":
            raise CellFailure(
                f"{name} timed out after {state.timeout:g} s; the kernel was interrupted "
                f"and the rest of the notebook is not run{_shown(result)}"
            )
        if outcome.status == "aborted" or result is None:
            raise CellFailure(
                f"{name}: the kernel died (or was restarted or shut down) while the cell "
                f"ran; the rest of the notebook is not run{_shown(result)}"
            )
        error = result.error
        if outcome.status == "error" and RAISES_EXCEPTION not in flags:
            traceback = _ANSI.sub("", "\n".join((error or {}).get("traceback", [])))
            raise CellFailure(f"{name} raised an exception:\n{traceback}")
        if outcome.status == "ok" and RAISES_EXCEPTION in flags:
            raise CellFailure(f"{name} is tagged raises-exception but raised nothing")
        if self.config.getoption("nb_update"):
            state.keep(self.index, result)
            return
        if IGNORE_OUTPUT in flags or _never_run(cell):
            return
        from .compare import diff_outputs

        diff = diff_outputs(cell.get("outputs", []), result.outputs, settings, name)
        if diff is not None:
            self.user_properties.append((DIFF_PROPERTY, _report_entry(diff)))
            raise CellFailure(diff.text)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CellFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class NotebookState:
    """One notebook's run: its scratch copy on the server, what each cell did, and
    whether the kernel is still usable."""

    def __init__(self, nbfile: NotebookFile) -> None:
        config = nbfile.config
        self.file = nbfile
        self.session = _session(config)
        self.notebook = nbfile.notebook
        settings = config.stash[_SETTINGS]
        self.settings = settings
        meta = (self.notebook.get("metadata") or {}).get("nb-outputs") or {}
        self.timeout = float(
            meta.get("timeout") or config.getoption("nb_timeout") or settings.timeout
        )
        self.outcomes: dict[int, Any] = {}
        self.broken: str | None = None
        self.kept: list[Any] = []
        self.run = nbfile.scratch_run()
        prepared = self.session.take_prepared(self.run.path)
        self.session.run(self.run.open(nbfile.scratch_content(), prepared))
        following = _next_notebook(nbfile)
        if following is not None and not hasattr(config, "workerinput"):
            # Under xdist the next item may go to another worker: no head start there.
            self.session.prepare_ahead(following.scratch_run(), following.scratch_content())

    def cell_name(self, index: int) -> str:
        cell = self.notebook["cells"][index]
        cell_id = f" (id {cell['id']!r})" if cell.get("id") else ""
        return f"{self.file.path.name} cell {index + 1}{cell_id}"

    def outcome(self, index: int) -> Any:
        """What the cell at `index` did, running first every earlier code cell that has
        not run (skipped cells stay skipped)."""
        from tornado.httpclient import HTTPClientError

        for position, cell in enumerate(self.notebook["cells"][: index + 1]):
            if position in self.outcomes or cell.get("cell_type") != "code":
                continue
            if not cell_source(cell).strip() or SKIP in self.settings.cell_flags(cell):
                continue
            if self.broken is not None:
                raise CellFailure(f"{self.cell_name(index)} was not run: {self.broken}")
            try:
                outcome = self.session.run(self.run.run_cell(_scratch_id(position), self.timeout))
            except (OSError, HTTPClientError) as exc:  # a refused request, a lost server
                self.broken = f"the server refused to run {self.cell_name(position)}: {exc}"
                raise CellFailure(self.broken) from None
            self.outcomes[position] = outcome
            if outcome.status == "timeout":
                self.broken = f"{self.cell_name(position)} timed out after {self.timeout:g} s"
            elif outcome.status == "aborted":
                self.broken = f"the kernel died while {self.cell_name(position)} ran"
        return self.outcomes[index]

    def keep(self, index: int, result: Any) -> None:
        from .notebook_update import NewOutputs

        cell = self.notebook["cells"][index]
        self.kept.append(
            NewOutputs(index, cell_source(cell), list(result.outputs), result.execution_count)
        )

    def close(self) -> None:
        try:
            self.session.run(self.run.room.disconnect())
            self.session.later(self.run.end())
        finally:
            if self.kept:
                self._write_back()

    def _write_back(self) -> None:
        from .compare import diff_outputs
        from .notebook_update import write_outputs

        cells = self.notebook["cells"]
        changed = [
            kept
            for kept in self.kept
            if cells[kept.index].get("execution_count") != kept.execution_count
            or diff_outputs(cells[kept.index].get("outputs", []), kept.outputs, self.settings, "")
        ]
        if changed:
            stale = write_outputs(self.file.path, changed)
            for index in stale:
                self.file.warn(
                    pytest.PytestWarning(
                        f"{self.cell_name(index)} changed while it ran: its outputs were not "
                        "updated"
                    )
                )


def _kernel_root(session: pytest.Session) -> Path:
    """The folder that holds every notebook of the session: kernels start in the folder
    of their notebook below it."""
    paths = {os.path.dirname(item.path) for item in session.items if isinstance(item, CellItem)}
    return Path(os.path.commonpath(sorted(paths))) if paths else session.config.rootpath


def _next_notebook(nbfile: NotebookFile) -> NotebookFile | None:
    """The notebook whose cells come after this one's in the run (after -k and -x)."""
    seen = False
    for item in nbfile.session.items:
        if item.parent is nbfile:
            seen = True
        elif seen and isinstance(item.parent, NotebookFile):
            return item.parent
    return None


def _scratch_id(index: int) -> str:
    return f"nb-outputs-{index}"


def _scratch_copy(notebook: dict[str, Any], kernel: str | None) -> dict[str, Any]:
    """The notebook as it runs on the server: every cell with an id of our own (so cells
    without ids, from nbformat < 4.5, are found too), on the chosen kernel."""
    scratch = copy.deepcopy(notebook)
    scratch["nbformat"], scratch["nbformat_minor"] = 4, max(5, scratch.get("nbformat_minor", 5))
    for index, cell in enumerate(scratch["cells"]):
        cell["id"] = _scratch_id(index)
    if kernel:
        spec = scratch.setdefault("metadata", {}).setdefault("kernelspec", {})
        spec.update(name=kernel, display_name=kernel)
    return scratch


def _never_run(cell: dict[str, Any]) -> bool:
    """A cell saved without ever running has nothing to compare with."""
    return cell.get("execution_count") is None and not cell.get("outputs")


def _shown(result: Any) -> str:
    text = result.text if result is not None else ""
    return f"; it had shown:\n{text}" if text else ""


def _report_entry(diff: Any) -> dict[str, Any]:
    def image(found: Any) -> dict[str, Any] | None:
        if found is None:
            return None
        return {"mime": found.mime, "data": found.data, "description": found.describe()}

    pairs = [
        {"label": p.label, "stored": image(p.stored), "new": image(p.new)} for p in diff.images
    ]
    return {"text": diff.text, "images": pairs}


class DiffReport:
    """`--nb-diff-html`: gathers the differences of failed cells (from the reports, so
    xdist workers' reach the controller too) and writes the page at the end."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.failures: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or not report.failed:
            return
        for name, value in report.user_properties:
            if name == DIFF_PROPERTY:
                self.failures.append({"nodeid": report.nodeid, **value})

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from .html_report import write_report

        write_report(self.target, self.failures)


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crdtsync_server(pytestconfig: pytest.Config) -> Any:
    """A running Jupyter server with jupyter-crdt-sync: `.url`, `.token` (and `.root_dir`
    when the session started it). Shared by the session, or by one xdist worker."""
    return _session(pytestconfig).server()


@pytest.fixture
def notebook_room(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Any:
    """`notebook_room(cells_or_path)`: a connected RoomClient on a new notebook made from
    a list of code cell sources, or on a copy of an existing .ipynb file;
    `notebook_room.run(cell)` runs a cell (an index into the code cells, or an id) and
    returns its ExecutionResult."""
    from .fixtures import NotebookRooms

    rooms = NotebookRooms(_session(pytestconfig), request.node.name)
    yield rooms
    rooms.close()
