"""Converting positions in cell text between the three ways of counting them.

Python counts code points, pycrdt's Text counts UTF-8 bytes and Yjs in the browser counts
UTF-16 code units; any edit by index must convert between them.
"""

from __future__ import annotations


def utf8_offset(text: str, index: int) -> int:
    """The UTF-8 byte offset of the code point at `index` in `text`."""
    if index < 0 or index > len(text):
        raise IndexError(f"index {index} outside text of length {len(text)}")
    return len(text[:index].encode("utf-8"))


def utf16_offset(text: str, index: int) -> int:
    """The UTF-16 code unit offset of the code point at `index` in `text`."""
    if index < 0 or index > len(text):
        raise IndexError(f"index {index} outside text of length {len(text)}")
    return len(text[:index].encode("utf-16-le")) // 2


def index_from_utf16(text: str, offset: int) -> int:
    """The code point index in `text` at UTF-16 offset `offset`."""
    units = 0
    for index, char in enumerate(text):
        if units >= offset:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    if units >= offset:
        return len(text)
    raise IndexError(f"UTF-16 offset {offset} outside text")
