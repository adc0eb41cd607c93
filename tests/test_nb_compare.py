"""Output comparison and settings of `--nb-outputs`, and ExecutionResult's helpers: pure
functions, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_crdt_sync.client import ExecutionResult
from jupyter_crdt_sync.testing.compare import diff_outputs
from jupyter_crdt_sync.testing.settings import NbOutputsSettings, load_settings

DEFAULTS = NbOutputsSettings()


def stream(text: str, name: str = "stdout") -> dict[str, object]:
    return {"output_type": "stream", "name": name, "text": text}


def test_default_rules_hide_addresses_timings_and_widget_ids() -> None:
    stored = [
        stream("<Foo object at 0x7f3a2c1b9d90>\n"),
        stream("1.2 ms ± 3.4 µs per loop (mean ± std. dev. of 7 runs, 1,000 loops each)\n"),
        stream("CPU times: user 3 ms, sys: 1 ms, total: 4 ms\nWall time: 5.1 ms\n"),
        {
            "output_type": "display_data",
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "a" * 32}},
            "metadata": {},
        },
    ]
    new = [
        stream("<Foo object at 0x55d1e2f3a4b0>\n"),
        stream("980 µs ± 12.1 µs per loop (mean ± std. dev. of 7 runs, 1,000 loops each)\n"),
        stream("CPU times: user 9 ms, sys: 0 ns, total: 9 ms\nWall time: 12 ms\n"),
        {
            "output_type": "display_data",
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "b" * 32}},
            "metadata": {},
        },
    ]
    assert diff_outputs(stored, new, DEFAULTS, "cell 1") is None
    assert diff_outputs([stream("x = 1\n")], [stream("x = 2\n")], DEFAULTS, "c") is not None


def test_adjacent_streams_merge_and_the_diff_names_the_line() -> None:
    stored = [stream("a\nb\n"), stream("c\n")]
    new = [stream("a\nB\nc\n")]
    diff = diff_outputs(stored, new, DEFAULTS, "nb.ipynb cell 3")
    assert diff is not None
    assert diff.text.splitlines()[0] == "nb.ipynb cell 3 [stdout], line 2:"
    assert "-b" in diff.text.splitlines() and "+B" in diff.text.splitlines()


def test_ignored_types_and_a_different_shape() -> None:
    settings = NbOutputsSettings(ignore=frozenset({"stderr", "text/html"}))
    stored = [
        stream("warn", "stderr"),
        {
            "output_type": "execute_result",
            "data": {"text/plain": "1", "text/html": "<b>1</b>"},
            "metadata": {},
            "execution_count": 1,
        },
    ]
    new = [
        {
            "output_type": "execute_result",
            "data": {"text/plain": "1", "text/html": "<i>"},
            "metadata": {},
            "execution_count": 4,
        }
    ]
    assert diff_outputs(stored, new, settings, "c") is None
    diff = diff_outputs([], new, DEFAULTS, "nb cell 2")
    assert diff is not None and "no output -> execute_result text/html" in diff.text


def test_settings_from_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[tool.crdtsync.nb-outputs]\ntimeout = 5\nignore = ['stderr']\n"
        "replace = [{pattern = '\\d+ rows', replacement = 'N rows'}]\n"
        "default-replacements = false\n"
        "[tool.crdtsync.nb-outputs.markers]\nskip = ['# slow']\n"
    )
    settings = load_settings(pyproject)
    assert settings.timeout == 5 and settings.ignore == {"stderr"}
    assert [p.pattern for p, _ in settings.replacements] == [r"\d+ rows"]
    assert settings.cell_flags({"source": "# slow\nx", "metadata": {}}) == {"skip"}
    assert settings.cell_flags({"source": "x", "metadata": {"tags": ["nbval-skip"]}}) == {"skip"}
    assert load_settings(tmp_path / "missing.toml") == NbOutputsSettings()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("timeout = 'long'", "timeout must be a number"),
        ("colour = 1", "unknown keys ['colour']"),
        ("ignore = 'stderr'", "ignore must be a list of strings"),
        ("replace = [{pattern = '('}]", "bad pattern '('"),
        ("[tool.crdtsync.nb-outputs.markers]\nsometimes = []", "markers.sometimes"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.crdtsync.nb-outputs]\n{body}\n")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_settings(pyproject)


def test_execution_result_helpers() -> None:
    result = ExecutionResult(
        cell_id="c",
        msg_id="m",
        status="error",
        execution_count=3,
        outputs=[
            stream("out\n"),
            {"output_type": "display_data", "data": {"image/png": "AAA", "text/plain": "<img>"}},
            {"output_type": "execute_result", "data": {"text/plain": ["4", "2"]}},
            {"output_type": "error", "ename": "KeyError", "evalue": "'k'", "traceback": []},
        ],
    )
    assert result.text == "out\n<img>\n42\n"
    assert result.data == {"image/png": "AAA", "text/plain": "42"}
    assert result.error is not None and result.error["ename"] == "KeyError"
    assert ExecutionResult("c", "m", "ok", 1, []).error is None
