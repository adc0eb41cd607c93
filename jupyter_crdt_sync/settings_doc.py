"""The shared settings document: JupyterLab's user settings, one entry per plugin.

Layout (the front-end's `settingsstate.ts` reads and writes the same):

- root Map `plugins`: plugin id -> Map `{"raw": Text, "values": Map}`. `raw` is the
  settings text as JupyterLab stores it (JSON5, comments kept); `values` holds one entry
  per setting (key -> JSON value), the parsed text.
- root Map `errors`: plugin id -> `{"file", "line", "message"}` for a mirror file that
  could not be taken in (written by the server only).
- root Map `info`: `{"format": 1}`, written when the document is created, so that the
  room's lineage has content (see Room._check_lineage).

Why both: `values` merges per key (two windows changing different settings of one plugin
both keep their change; the same setting converges to one value, last writer wins), and
`raw` keeps the text with its comments, edited by minimal diffs so that concurrent edits of
different lines merge too. When the merged text does not parse to the merged values (the
same line edited twice, an edit that broke the syntax), `reconcile` rewrites that text
from the values; only then are its comments lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import json5
from pycrdt import Doc, Map, Text

from .merge import apply_text_edits, merge_text

FORMAT = 1


class SettingsError(ValueError):
    """Settings text that cannot be taken in; `line` is 1-based, or None."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_JSON5_LINE = re.compile(r"^<string>:(\d+) ")


def parse_settings(raw: str) -> dict[str, Any]:
    """The settings object of a settings text (JSON5); raises SettingsError with the line."""
    if not raw.strip():
        return {}  # JupyterLab reads an empty settings file as {}
    try:
        value = json5.loads(raw)
    except ValueError as exc:
        text = str(exc)
        match = _JSON5_LINE.match(text)
        if match is None:
            raise SettingsError(f"not valid JSON5: {text}") from exc
        raise SettingsError(f"not valid JSON5: {text[match.end() :]}", int(match.group(1))) from exc
    if not isinstance(value, dict):
        raise SettingsError(f"expected an object of settings, got {type(value).__name__}", 1)
    return value


def plain(value: Any) -> Any:
    """A JSON value as read from the document, with integral floats back to ints (Yjs and
    pycrdt hand numbers back as floats: 14 would be written back as 14.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def render(values: dict[str, Any]) -> str:
    """Settings text for values, as JupyterLab's settings API would accept and keep it."""
    return json.dumps(values, indent=4, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class PluginState:
    raw: str
    values: dict[str, Any]

    @property
    def consistent(self) -> bool:
        try:
            return parse_settings(self.raw) == self.values
        except SettingsError:
            return False


class SettingsDocument:
    """Typed access to the settings layout of a pycrdt Doc."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.plugins = doc.get("plugins", type=Map)
        self.errors = doc.get("errors", type=Map)
        self.info = doc.get("info", type=Map)

    def initialize(self) -> None:
        """Mark a new document (gives the room's lineage client content)."""
        self.info["format"] = FORMAT

    def plugin_ids(self) -> list[str]:
        return sorted(self.plugins.keys())

    def read(self, plugin: str) -> PluginState | None:
        entry = self.plugins.get(plugin)
        if not isinstance(entry, Map):
            return None
        raw, values = entry.get("raw"), entry.get("values")
        return PluginState(
            str(raw) if isinstance(raw, Text) else "",
            plain(values.to_py()) if isinstance(values, Map) else {},
        )

    def snapshot(self) -> dict[str, PluginState]:
        return {
            plugin: state
            for plugin in self.plugin_ids()
            if (state := self.read(plugin)) is not None
        }

    def set_raw(self, plugin: str, raw: str, *, base: PluginState | None = None) -> dict[str, Any]:
        """Bring `raw` (already validated) into the plugin's entry; returns its values.

        Without `base` the entry becomes exactly `raw`. With `base` (what `raw` was made
        from, e.g. the file as the mirror last wrote it) only the changes base -> raw are
        applied: per key to the values, as a text merge to the text, so changes made in
        the document meanwhile survive.
        """
        new_values = parse_settings(raw)
        with self.doc.transaction():
            entry = self.plugins.get(plugin)
            if not isinstance(entry, Map):
                self.plugins[plugin] = Map({"raw": Text(raw), "values": Map(new_values)})
                return new_values
            text, values = entry["raw"], entry["values"]
            current = str(text)
            if base is None:
                apply_text_edits(text, current, merge_text(current, current, raw))
                changed = {k: v for k, v in new_values.items() if plain(values.get(k)) != v}
                removed = [k for k in values if k not in new_values]
            else:
                apply_text_edits(text, current, merge_text(base.raw, current, raw))
                old = base.values
                changed = {k: v for k, v in new_values.items() if old.get(k, _MISSING) != v}
                removed = [k for k in old if k not in new_values and k in values]
            for key, value in changed.items():
                values[key] = value
            for key in removed:
                del values[key]
        state = self.read(plugin)
        assert state is not None
        return state.values

    def reconcile(self, plugin: str) -> bool:
        """Make the plugin's text say what its values say, if it does not; True if it
        rewrote the text."""
        state = self.read(plugin)
        if state is None or state.consistent:
            return False
        entry = self.plugins[plugin]
        text = entry["raw"]
        current = str(text)
        apply_text_edits(text, current, merge_text(current, current, render(state.values)))
        return True

    def set_error(self, plugin: str, file: str, line: int | None, message: str) -> None:
        error = {"file": file, "line": line, "message": message}
        if plain(self.errors.get(plugin)) != error:
            self.errors[plugin] = error

    def clear_error(self, plugin: str) -> None:
        if plugin in self.errors:
            del self.errors[plugin]

    def error_list(self) -> list[dict[str, Any]]:
        errors = self.errors
        return [{"plugin": plugin, **plain(errors[plugin])} for plugin in sorted(errors.keys())]


_MISSING = object()
