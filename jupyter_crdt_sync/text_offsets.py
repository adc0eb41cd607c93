"""Converting positions in cell text between the three ways of counting them.

Python counts code points and pycrdt's Text counts UTF-8 bytes (Yjs in the browser counts
UTF-16 code units); any edit by index must convert between them.
"""

from __future__ import annotations


def utf8_offset(text: str, index: int) -> int:
    """The UTF-8 byte offset of the code point at `index` in `text`."""
    if index < 0 or index > len(text):
        raise IndexError(f"index {index} outside text of length {len(text)}")
    return len(text[:index].encode("utf-8"))
