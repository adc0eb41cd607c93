"""Cell outputs from kernel messages: nbformat outputs, terminal-style stream folding, caps.

Pure functions and values, no document and no kernel: the kernel actor applies what they
compute to the shared document.

Sizes are UTF-8 bytes: of the text for a stream output, of the compact JSON for the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .cells import multiline

OUTPUT_MESSAGE_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})


def output_from_message(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """The nbformat 4 output an IOPub message adds to a cell, or None if it adds none."""
    if msg_type == "stream":
        return {"output_type": "stream", "name": str(content["name"]), "text": content["text"]}
    if msg_type in ("display_data", "execute_result"):
        output: dict[str, Any] = {
            "output_type": msg_type,
            "data": dict(content.get("data") or {}),
            "metadata": dict(content.get("metadata") or {}),
        }
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": str(content.get("ename", "")),
            "evalue": str(content.get("evalue", "")),
            "traceback": [str(line) for line in content.get("traceback") or []],
        }
    return None


def display_id(content: dict[str, Any]) -> str | None:
    """The display id of a display_data / execute_result / update_display_data message."""
    transient = content.get("transient") or {}
    value = transient.get("display_id")
    return str(value) if value is not None else None


# -- stream text -------------------------------------------------------------------------


@dataclass(frozen=True)
class Terminal:
    """The unfinished last line of a stream output, and the column the next character
    writes to. Lines before it are final: `\\r` and `\\b` never leave the last line."""

    line: str = ""
    cursor: int = 0


@dataclass(frozen=True)
class StreamEdit:
    """How a chunk changes a stream output's text: keep the first `keep` characters of
    the old unfinished line, drop the rest of the text, then append `append`."""

    keep: int
    append: str
    terminal: Terminal


_CONTROL = re.compile(r"([\r\n\b])")


def fold_stream(terminal: Terminal, chunk: str) -> StreamEdit:
    """Apply `chunk` to a stream's text as a terminal would: `\\r` returns to the start of
    the line and what follows overwrites it; `\\b` moves back one column; `\\n` ends the
    line. Progress bars therefore stay one line."""
    line, cursor = terminal.line, terminal.cursor
    if cursor == len(line) and "\r" not in chunk and "\b" not in chunk:
        # The common case: plain text appended at the end.
        tail = chunk.rpartition("\n")[2] if "\n" in chunk else line + chunk
        return StreamEdit(len(line), chunk, Terminal(tail, len(tail)))
    done: list[str] = []
    for token in _CONTROL.split(chunk):
        if not token:
            continue
        if token == "\n":
            done.append(line + "\n")
            line, cursor = "", 0
        elif token == "\r":
            cursor = 0
        elif token == "\b":
            cursor = max(0, cursor - 1)
        else:
            line = line[:cursor] + token + line[cursor + len(token) :]
            cursor += len(token)
    new_text = "".join(done) + line
    old_line = terminal.line
    keep = _common_prefix_length(old_line, new_text)
    return StreamEdit(keep, new_text[keep:], Terminal(line, cursor))


def _common_prefix_length(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


# -- sizes and caps ----------------------------------------------------------------------


def text_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def output_bytes(output: dict[str, Any]) -> int:
    if output.get("output_type") == "stream":
        return text_bytes(multiline(output.get("text", "")))
    return text_bytes(json.dumps(output, separators=(",", ":"), ensure_ascii=False))


def cut_text(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` of at most `max_bytes` UTF-8 bytes, ending at a line
    break if there is one in its last quarter, so that a truncated output ends cleanly."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    prefix = encoded[: max(0, max_bytes)].decode("utf-8", errors="ignore")
    newline = prefix.rfind("\n")
    if newline >= len(prefix) * 3 // 4:
        prefix = prefix[: newline + 1]
    return prefix


def human_bytes(count: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{count} bytes"


def truncation_note(limit: int, setting: str) -> str:
    return (
        f"\n[output truncated by the server: past {human_bytes(limit)} "
        f"(c.CRDTSync.{setting}); the rest is not kept]\n"
    )


def truncate_output(output: dict[str, Any], max_bytes: int, note: str) -> dict[str, Any]:
    """A non-stream output cut down to about `max_bytes`, with `note` to say so; the output
    itself if it fits."""
    if output_bytes(output) <= max_bytes:
        return output
    note = note.strip()
    if output["output_type"] == "error":
        budget = max(0, max_bytes // 2)
        kept: list[str] = []
        for line in reversed(output["traceback"]):
            budget -= text_bytes(line)
            if budget < 0:
                break
            kept.insert(0, line)
        return {
            **output,
            "evalue": cut_text(output["evalue"], max_bytes // 4),
            "traceback": [note, *kept],
        }
    # A rich output cannot be cut meaningfully: keep its plain text, shortened, and say so.
    plain = output.get("data", {}).get("text/plain", "")
    plain = multiline(plain)
    shortened = {**output, "data": {"text/plain": cut_text(plain, max_bytes // 2) + note}}
    shortened["metadata"] = {}
    return shortened
