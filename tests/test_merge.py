"""The three-way text merge used for edits made to the file outside the room."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from jupyter_crdt_sync.merge import apply_text_edits, merge_text

texts = st.text(alphabet="ab\n é🍎", max_size=12)


def merged(base: str, ours: str, theirs: str) -> str:
    result = ours
    for start, end, replacement in merge_text(base, ours, theirs):
        result = result[:start] + replacement + result[end:]
    return result


@given(base=texts, theirs=texts)
def test_unchanged_ours_takes_theirs(base: str, theirs: str) -> None:
    assert merged(base, base, theirs) == theirs


@given(base=texts, ours=texts)
def test_unchanged_theirs_keeps_ours(base: str, ours: str) -> None:
    assert merged(base, ours, base) == ours


@settings(max_examples=1000)
@given(base=texts, ours=texts, theirs=texts)
def test_edits_apply_to_a_crdt_text_with_utf8_offsets(base: str, ours: str, theirs: str) -> None:
    text = Doc().get("t", type=Text)
    text.insert(0, ours)
    apply_text_edits(text, ours, merge_text(base, ours, theirs))
    assert str(text) == merged(base, ours, theirs)


def test_both_sides_edits_survive() -> None:
    assert merged("hello world", "hello brave world", "hello world!") == "hello brave world!"
    assert merged("abcd", "abXcd", "abcdY") == "abXcdY"
    assert merged("🍎ab", "🍎aXb", "🍎🍐ab") == "🍎🍐aXb"
    assert merged("x = 1\ny = 2\n", "x = 1\ny = 2\nz = 3\n", "x = 10\ny = 2\n") == (
        "x = 10\ny = 2\nz = 3\n"
    )


def test_deleted_outside_and_edited_inside_keeps_the_inside_edit() -> None:
    assert merged("abc", "aXc", "ac") == "aXc"


def test_insertion_inside_a_deleted_run_is_kept_apart() -> None:
    # Found by hypothesis: an insertion point inside a run of deletions.
    assert merge_text("\na\n ", "\n\n ", "éa") == [(1, 3, ""), (1, 1, "é"), (0, 1, "")]
    assert merged("\na\n ", "\n\n ", "éa") == "é"
