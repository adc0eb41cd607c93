"""`--nb-diff-html PATH`: one self-contained HTML page of the failed cells, their text
diffs, and each differing image stored and new side by side."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: sans-serif; margin: 2em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
.images { display: flex; gap: 2em; align-items: flex-start; }
.images figure { margin: 0; }
.images img { max-width: 45vw; border: 1px solid #ccc; }
"""


def write_report(path: Path, failures: list[dict[str, Any]]) -> None:
    """`failures`: {"nodeid", "text", "images": [{"label", "stored", "new"}]}, where an
    image is {"mime", "data" (base64), "description"} or None."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Notebook output differences</title><style>{_STYLE}</style></head><body>",
        f"<h1>Notebook output differences ({len(failures)})</h1>",
    ]
    if not failures:
        parts.append("<p>Every compared cell matched its stored outputs.</p>")
    for failure in failures:
        parts.append(f"<h2>{html.escape(failure['nodeid'])}</h2>")
        parts.append(f"<pre>{html.escape(failure['text'])}</pre>")
        for pair in failure.get("images", []):
            parts.append(f"<h3>{html.escape(pair['label'])}</h3><div class='images'>")
            for side in ("stored", "new"):
                parts.append(_figure(side, pair.get(side)))
            parts.append("</div>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def _figure(side: str, image: dict[str, Any] | None) -> str:
    if image is None:
        return f"<figure><figcaption>{side}: none</figcaption></figure>"
    source = f"data:{html.escape(image['mime'])};base64,{html.escape(image['data'])}"
    caption = html.escape(f"{side}: {image['description']}")
    return f"<figure><img alt='{side}' src='{source}'><figcaption>{caption}</figcaption></figure>"
