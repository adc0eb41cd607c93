"""Comparing a cell's stored outputs with new ones: pure functions, no server.

Each side is first turned into *chunks*: one per stream (adjacent outputs of one stream
merged, as a reader sees them), one per MIME type of a result or display, one per error
(`ename: evalue`; tracebacks hold paths and colours, so they are left out). Text is
normalised by the replacement rules (memory addresses, timings, widget ids by default),
images are compared by their bytes. A difference is told per chunk: text as a unified diff
naming the cell and the first differing line, images by size and hash.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .settings import NbOutputsSettings

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


@dataclass(frozen=True)
class Image:
    mime: str
    data: str  # base64, as in the notebook
    size: int
    sha256: str
    width: int | None
    height: int | None

    def describe(self) -> str:
        dims = f"{self.width}x{self.height} px, " if self.width is not None else ""
        return f"{dims}{self.size} bytes, sha256 {self.sha256[:12]}"


@dataclass(frozen=True)
class Chunk:
    label: str
    text: str | None = None
    image: Image | None = None

    def render(self) -> str:
        body = self.image.describe() if self.image is not None else (self.text or "")
        return f"[{self.label}]\n{body}"


@dataclass(frozen=True)
class ImagePair:
    label: str
    stored: Image | None
    new: Image | None


@dataclass(frozen=True)
class OutputDiff:
    """What differs, as text for the terminal and as image pairs for the HTML report."""

    text: str
    images: tuple[ImagePair, ...] = ()


def chunks(outputs: Iterable[dict[str, Any]], settings: NbOutputsSettings) -> list[Chunk]:
    found: list[Chunk] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind in settings.ignore:
            continue
        if kind == "stream":
            name = str(output.get("name", "stdout"))
            if name in settings.ignore:
                continue
            text = normalize(_text(output.get("text", "")), settings)
            if found and found[-1].label == name and found[-1].text is not None:
                found[-1] = Chunk(name, found[-1].text + text)
            else:
                found.append(Chunk(name, text))
        elif kind in ("execute_result", "display_data", "update_display_data"):
            for mime, value in sorted((output.get("data") or {}).items()):
                if mime in settings.ignore:
                    continue
                label = f"{kind} {mime}"
                image = _image(mime, value)
                if image is not None:
                    found.append(Chunk(label, image=image))
                elif isinstance(value, (str, list)):
                    found.append(Chunk(label, normalize(_text(value), settings)))
                else:
                    found.append(Chunk(label, normalize(json.dumps(value, indent=1), settings)))
        elif kind == "error":
            text = f"{output.get('ename')}: {output.get('evalue')}"
            found.append(Chunk("error", normalize(text, settings)))
    return found


def normalize(text: str, settings: NbOutputsSettings) -> str:
    text = text.replace("\r\n", "\n")
    for pattern, replacement in settings.replacements:
        text = pattern.sub(replacement, text)
    return text


def diff_outputs(
    stored: list[dict[str, Any]],
    new: list[dict[str, Any]],
    settings: NbOutputsSettings,
    cell_name: str,
) -> OutputDiff | None:
    """None when the outputs mean the same; else what differs, naming `cell_name`."""
    old_chunks, new_chunks = chunks(stored, settings), chunks(new, settings)
    if old_chunks == new_chunks:
        return None
    if [c.label for c in old_chunks] != [c.label for c in new_chunks]:
        # Different outputs altogether: one diff of everything, output kinds as headings.
        old_text = "\n".join(c.render() for c in old_chunks)
        new_text = "\n".join(c.render() for c in new_chunks)
        lines = [f"{cell_name}: the outputs differ ({_kinds(old_chunks)} -> {_kinds(new_chunks)})"]
        lines.append(_unified(old_text, new_text, f"{cell_name} outputs"))
        images = _unpaired_images(old_chunks, new_chunks)
        return OutputDiff("\n".join(lines), images)
    parts: list[str] = []
    images: list[ImagePair] = []
    for old, fresh in zip(old_chunks, new_chunks, strict=True):
        if old == fresh:
            continue
        if old.image is not None or fresh.image is not None:
            parts.append(
                f"{cell_name} [{old.label}]: the image differs: stored "
                f"{_describe(old.image)}, new {_describe(fresh.image)}"
            )
            images.append(ImagePair(old.label, old.image, fresh.image))
            continue
        old_text, new_text = old.text or "", fresh.text or ""
        line = _first_difference(old_text, new_text)
        parts.append(f"{cell_name} [{old.label}], line {line}:")
        parts.append(_unified(old_text, new_text, f"{cell_name} [{old.label}]"))
    return OutputDiff("\n".join(parts), tuple(images))


def _unified(old: str, new: str, name: str) -> str:
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{name} (stored)", f"{name} (new)", lineterm=""
    )
    return "\n".join(diff)


def _first_difference(old: str, new: str) -> int:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for number, (a, b) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if a != b:
            return number
    return min(len(old_lines), len(new_lines)) + 1


def _kinds(found: list[Chunk]) -> str:
    return ", ".join(c.label for c in found) or "no output"


def _describe(image: Image | None) -> str:
    return image.describe() if image is not None else "none"


def _unpaired_images(old: list[Chunk], new: list[Chunk]) -> tuple[ImagePair, ...]:
    old_images = [c for c in old if c.image is not None]
    new_images = [c for c in new if c.image is not None]
    pairs = []
    for index in range(max(len(old_images), len(new_images))):
        a = old_images[index] if index < len(old_images) else None
        b = new_images[index] if index < len(new_images) else None
        if a is not None and b is not None and a.image == b.image:
            continue
        label = (a or b).label if (a or b) is not None else "image"
        pairs.append(ImagePair(label, a.image if a else None, b.image if b else None))
    return tuple(pairs)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _image(mime: str, value: Any) -> Image | None:
    if mime not in IMAGE_TYPES:
        return None
    data = _text(value).replace("\n", "")
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = data.encode()
    width, height = _dimensions(raw)
    return Image(mime, data, len(raw), hashlib.sha256(raw).hexdigest(), width, height)


def _dimensions(raw: bytes) -> tuple[int | None, int | None]:
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:
        width, height = struct.unpack(">II", raw[16:24])
        return int(width), int(height)
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        width, height = struct.unpack("<HH", raw[6:10])
        return int(width), int(height)
    return None, None
