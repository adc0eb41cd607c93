"""Outputs from kernel messages, terminal-style stream folding and caps: no kernel needed."""

from __future__ import annotations

import json

import nbformat
from hypothesis import given
from hypothesis import strategies as st

from jupyter_crdt_sync.outputs import (
    Terminal,
    cut_text,
    display_id,
    fold_stream,
    output_bytes,
    output_from_message,
    truncate_output,
    truncation_note,
)


def folded(chunks: list[str]) -> str:
    """The text a stream output shows after these chunks, applied as the actor applies
    them: keep part of the unfinished line, drop the rest, append."""
    text, terminal = "", Terminal()
    for chunk in chunks:
        edit = fold_stream(terminal, chunk)
        assert text.endswith(terminal.line)
        line_start = len(text) - len(terminal.line)
        text = text[: line_start + edit.keep] + edit.append
        terminal = edit.terminal
        assert text.endswith(terminal.line)
    return text


def terminal_screen(text: str) -> str:
    """A reference terminal, one character at a time."""
    lines, line, cursor = [], [], 0
    for char in text:
        if char == "\n":
            lines.append("".join(line) + "\n")
            line, cursor = [], 0
        elif char == "\r":
            cursor = 0
        elif char == "\b":
            cursor = max(0, cursor - 1)
        else:
            if cursor < len(line):
                line[cursor] = char
            else:
                line.append(char)
            cursor += 1
    return "".join(lines) + "".join(line)


def test_plain_chunks_are_appended():
    assert folded(["a\nb", "c\n", "d"]) == "a\nbc\nd"


def test_carriage_return_keeps_a_progress_bar_on_one_line():
    chunks = [f"\r{i:3d}% |{'#' * (i // 10):<10}|" for i in range(101)] + ["\ndone\n"]
    assert folded(chunks) == "100% |##########|\ndone\n"


def test_carriage_return_overwrites_like_a_terminal():
    assert folded(["xyz\rab"]) == "abz"
    assert folded(["xyz\r", "ab"]) == "abz"
    # \r\n ends the line without clearing it.
    assert folded(["50%\r\n", "next"]) == "50%\nnext"


def test_backspace_moves_back_one_column():
    assert folded(["abc\b", "X"]) == "abX"
    assert folded(["ab\b\b\b\bX"]) == "Xb"
    # Backspace never crosses a newline.
    assert folded(["a\n\bb"]) == "a\nb"


def test_earlier_lines_are_never_touched():
    edit = fold_stream(Terminal("50%", 3), "\r60%")
    # Only the unfinished line changes, and only from where it differs.
    assert edit.keep == 0
    assert edit.append == "60%"
    edit = fold_stream(Terminal("Downloading 10%", 15), "\rDownloading 20%")
    assert edit.keep == len("Downloading ")
    assert edit.append == "20%"


def test_non_ascii_progress():
    assert folded(["🍎 1/3\r", "🍎 2/3\r", "🍎 3/3\n"]) == "🍎 3/3\n"


@given(
    st.lists(
        st.text(alphabet=st.sampled_from(["a", "é", "🍎", "\r", "\n", "\b", " "]), max_size=12),
        max_size=8,
    )
)
def test_chunk_boundaries_do_not_matter(chunks):
    assert folded(chunks) == terminal_screen("".join(chunks))


def test_outputs_from_messages_are_valid_nbformat():
    messages = [
        ("stream", {"name": "stdout", "text": "hi\n"}),
        ("display_data", {"data": {"text/plain": "x"}, "metadata": {}, "transient": {}}),
        ("execute_result", {"data": {"text/plain": "2"}, "metadata": {}, "execution_count": 3}),
        ("error", {"ename": "ValueError", "evalue": "boom", "traceback": ["line 1", "line 2"]}),
    ]
    outputs = [output_from_message(t, c) for t, c in messages]
    cell = nbformat.v4.new_code_cell("x", outputs=outputs, execution_count=3)
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
    # The transient part (display ids) is not an output's.
    assert "transient" not in outputs[1]
    assert output_from_message("status", {"execution_state": "idle"}) is None
    assert output_from_message("clear_output", {"wait": False}) is None


def test_display_id():
    assert display_id({"transient": {"display_id": "abc"}}) == "abc"
    assert display_id({"transient": {}}) is None
    assert display_id({}) is None


def test_cut_text_respects_utf8_and_prefers_line_ends():
    assert cut_text("🍎🍎🍎", 5) == "🍎"
    assert cut_text("short", 100) == "short"
    text = "".join(f"line {i}\n" for i in range(100))
    cut = cut_text(text, 200)
    assert len(cut.encode()) <= 200
    assert cut.endswith("\n")


def test_truncated_outputs_stay_valid_and_say_so():
    note = truncation_note(1000, "max_output_bytes")
    big_image = {
        "output_type": "display_data",
        "data": {"image/png": "A" * 100_000, "text/plain": "<Figure>"},
        "metadata": {"image/png": {"width": 100}},
    }
    cut = truncate_output(big_image, 1000, note)
    assert output_bytes(cut) <= 1000
    assert "image/png" not in cut["data"]
    assert "truncated" in cut["data"]["text/plain"]
    assert "max_output_bytes" in cut["data"]["text/plain"]
    error = {
        "output_type": "error",
        "ename": "RecursionError",
        "evalue": "maximum recursion depth exceeded",
        "traceback": [f"frame {i} " + "x" * 100 for i in range(3000)],
    }
    cut_error = truncate_output(error, 10_000, note)
    assert output_bytes(cut_error) <= 10_000
    assert "truncated" in cut_error["traceback"][0]
    # The innermost frames, where the error happened, are the ones kept.
    assert cut_error["traceback"][-1] == error["traceback"][-1]
    small = {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}}
    assert truncate_output(small, 1000, note) is small
    cells = [nbformat.v4.new_code_cell("x", outputs=[cut, cut_error, small])]
    nbformat.validate(
        nbformat.from_dict(json.loads(json.dumps(nbformat.v4.new_notebook(cells=cells))))
    )


def test_output_bytes():
    assert output_bytes({"output_type": "stream", "name": "stdout", "text": "é"}) == 2
    assert output_bytes({"output_type": "stream", "name": "stdout", "text": ["a", "b"]}) == 2
    assert output_bytes({"output_type": "display_data", "data": {}, "metadata": {}}) > 0
