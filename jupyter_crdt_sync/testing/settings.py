"""What `pytest --nb-outputs` compares and how: `[tool.crdtsync.nb-outputs]` in
pyproject.toml, read once into a frozen `NbOutputsSettings`.

    [tool.crdtsync.nb-outputs]
    timeout = 120                        # seconds one cell may run (a notebook's metadata
                                         # "nb-outputs": {"timeout": N} overrides it)
    kernel = "python3"                   # the kernel to use instead of the notebook's
    ignore = ["stderr", "text/html"]     # output types, stream names or MIME types
    replace = [{ pattern = "\\d+ rows", replacement = "N rows" }]
    default-replacements = true          # the memory address / timing / widget id rules

    [tool.crdtsync.nb-outputs.markers]   # comments in a cell's source that act as tags
    skip = ["# NBVAL_SKIP"]
    ignore-output = ["# NBVAL_IGNORE_OUTPUT"]
    raises-exception = ["# NBVAL_RAISES_EXCEPTION"]

A value of the wrong type is an error that names the key, raised when pytest starts.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli before 3.11
    import tomli as tomllib

SKIP, IGNORE_OUTPUT, RAISES_EXCEPTION = "skip", "ignore-output", "raises-exception"

# Cell tags: ours, and nbval's, so a notebook kept under nbval means the same here.
TAGS = {
    SKIP: ("nb-outputs-skip", "nbval-skip"),
    IGNORE_OUTPUT: ("nb-outputs-ignore-output", "nbval-ignore-output"),
    RAISES_EXCEPTION: ("raises-exception",),
}
DEFAULT_MARKERS = {
    SKIP: ("# NBVAL_SKIP",),
    IGNORE_OUTPUT: ("# NBVAL_IGNORE_OUTPUT",),
    RAISES_EXCEPTION: ("# NBVAL_RAISES_EXCEPTION",),
}

# Outputs that differ from run to run while meaning the same.
DEFAULT_REPLACEMENTS = (
    # `<object at 0x7f3a2c1b9d90>`, ids in reprs
    (r"\b0x[0-9a-fA-F]{6,16}\b", "0xADDRESS"),
    # %timeit: "1.2 ms ± 3.4 µs per loop (mean ± std. dev. of 7 runs, 1,000 loops each)"
    (r"[\d.]+ [nµum]?s ± [\d.]+ [nµum]?s per loop \([^)]*\)", "TIMEIT"),
    # %time: "CPU times: user 1.2 ms, sys: 0 ns, total: 1.2 ms" and "Wall time: 3 s"
    (r"CPU times: [^\n]*", "CPU TIMES"),
    (r"Wall time: [^\n]*", "WALL TIME"),
    # ipywidgets views name their model by a fresh id on every run
    (r'("model_id":\s*")[0-9a-f]{32}(")', r"\1MODEL-ID\2"),
)


@dataclass(frozen=True)
class NbOutputsSettings:
    timeout: float = 120.0
    kernel: str | None = None
    ignore: frozenset[str] = frozenset()
    replacements: tuple[tuple[re.Pattern[str], str], ...] = field(
        default_factory=lambda: _compile(DEFAULT_REPLACEMENTS)
    )
    markers: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_MARKERS))

    def cell_flags(self, cell: dict[str, Any]) -> set[str]:
        """Which of skip / ignore-output / raises-exception apply to a cell, from its tags
        and from the markers in its source."""
        tags = set((cell.get("metadata") or {}).get("tags") or ())
        source = cell.get("source") or ""
        source = "".join(source) if isinstance(source, list) else source
        flags = set()
        for flag, names in TAGS.items():
            if tags.intersection(names) or any(m in source for m in self.markers.get(flag, ())):
                flags.add(flag)
        return flags


def load_settings(pyproject: Path | None) -> NbOutputsSettings:
    """The settings of `[tool.crdtsync.nb-outputs]` in this pyproject.toml (the defaults
    when there is no such file or table); ValueError naming the key for a bad value."""
    table: dict[str, Any] = {}
    if pyproject is not None and pyproject.is_file():
        with open(pyproject, "rb") as file:
            data = tomllib.load(file)
        table = data.get("tool", {}).get("crdtsync", {}).get("nb-outputs", {})
    where = f"[tool.crdtsync.nb-outputs] in {pyproject}"
    known = {"timeout", "kernel", "ignore", "replace", "default-replacements", "markers"}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected {sorted(known)}")
    timeout = table.get("timeout", 120.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"{where}: timeout must be a number of seconds > 0, got {timeout!r}")
    kernel = table.get("kernel")
    if kernel is not None and not isinstance(kernel, str):
        raise ValueError(f"{where}: kernel must be a kernel name, got {kernel!r}")
    ignore = _strings(table.get("ignore", []), f"{where}: ignore")
    rules: list[tuple[str, str]] = []
    if table.get("default-replacements", True):
        rules.extend(DEFAULT_REPLACEMENTS)
    for rule in table.get("replace", []):
        if not (isinstance(rule, dict) and isinstance(rule.get("pattern"), str)):
            raise ValueError(
                f"{where}: each replace entry is {{pattern = str, replacement = str}}, got {rule!r}"
            )
        rules.append((rule["pattern"], str(rule.get("replacement", ""))))
    markers = dict(DEFAULT_MARKERS)
    for flag, values in (table.get("markers") or {}).items():
        if flag not in TAGS:
            raise ValueError(f"{where}: markers.{flag}: expected one of {sorted(TAGS)}")
        markers[flag] = tuple(_strings(values, f"{where}: markers.{flag}"))
    try:
        replacements = _compile(rules)
    except re.error as exc:
        raise ValueError(f"{where}: replace: bad pattern {exc.pattern!r}: {exc}") from None
    return NbOutputsSettings(
        timeout=float(timeout),
        kernel=kernel,
        ignore=frozenset(ignore),
        replacements=replacements,
        markers=markers,
    )


def _strings(values: Any, where: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where} must be a list of strings, got {values!r}")
    return values


def _compile(rules: Any) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern), replacement) for pattern, replacement in rules)
