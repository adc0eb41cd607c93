"""JupyterLab's user settings on disk: where the `.jupyterlab-settings` files are, which
plugins exist, and checking a settings text against its plugin's schema.

Everything about schemas goes through jupyterlab_server's settings utilities, the ones its
`lab/api/settings` handler uses, so that a text accepted here is one that JupyterLab
accepts and reads back the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from jupyterlab_server.settings_utils import (
    SETTINGS_EXTENSION,
    _get_overrides,
    _get_schema,
    get_settings,
)
from tornado.web import HTTPError

from .atomic_save import replace_writing
from .settings_doc import SettingsError, parse_settings


@dataclass(frozen=True)
class SettingsLocation:
    """JupyterLab's settings directories, as its settings API is configured."""

    settings_dir: str
    schemas_dir: str
    app_settings_dir: str
    labextensions_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettingsLimits:
    max_setting_bytes: int = 1024 * 1024


def plugin_file(location: SettingsLocation, plugin: str) -> str:
    """The mirror file of `plugin` (`@scope/ext:name` -> `@scope/ext/name.jupyterlab-settings`)."""
    package, _, name = plugin.partition(":")
    return os.path.join(location.settings_dir, package, name + SETTINGS_EXTENSION)


def plugin_of_file(location: SettingsLocation, path: str) -> str | None:
    relative = os.path.relpath(path, location.settings_dir).replace(os.sep, "/")
    if not relative.endswith(SETTINGS_EXTENSION) or "/" not in relative:
        return None
    package, _, name = relative[: -len(SETTINGS_EXTENSION)].rpartition("/")
    return f"{package}:{name}"


def scan(location: SettingsLocation) -> dict[str, tuple[int, int, int]]:
    """Every settings file by plugin id, with what tells a change: (mtime_ns, size, inode)."""
    found: dict[str, tuple[int, int, int]] = {}
    for directory, _, names in os.walk(location.settings_dir):
        for name in names:
            if not name.endswith(SETTINGS_EXTENSION):
                continue
            path = os.path.join(directory, name)
            plugin = plugin_of_file(location, path)
            try:
                stat = os.stat(path)
            except OSError:
                continue  # gone since the listing
            if plugin is not None:
                found[plugin] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    return found


def read_file(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def write_file(path: str, raw: str) -> None:
    """Atomically (temporary file, fsync, rename): JupyterLab never reads half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with replace_writing(path) as file:
        file.write(raw)


@dataclass
class SchemaCatalog:
    """The plugins that have a settings schema, and validation against it."""

    location: SettingsLocation
    limits: SettingsLimits = field(default_factory=SettingsLimits)
    _validators: dict[str, Draft7Validator] = field(default_factory=dict)
    _overrides: dict[str, Any] | None = None

    def plugin_ids(self) -> list[str]:
        result, _ = get_settings(
            self.location.app_settings_dir,
            self.location.schemas_dir,
            self.location.settings_dir,
            labextensions_path=list(self.location.labextensions_path),
            ids_only=True,
        )
        return sorted(entry["id"] for entry in result["settings"])

    def validator(self, plugin: str) -> Draft7Validator:
        """The plugin's schema validator; SettingsError if no plugin has that id."""
        validator = self._validators.get(plugin)
        if validator is not None:
            return validator
        if self._overrides is None:
            self._overrides, _ = _get_overrides(self.location.app_settings_dir)
        try:
            schema, _ = _get_schema(
                self.location.schemas_dir,
                plugin,
                self._overrides,
                labextensions_path=list(self.location.labextensions_path),
            )
        except HTTPError as exc:
            raise SettingsError(f"unknown plugin {plugin!r}: no settings schema") from exc
        validator = self._validators[plugin] = Draft7Validator(schema)
        return validator

    def known(self, plugin: str) -> bool:
        try:
            self.validator(plugin)
        except SettingsError:
            return False
        return True

    def check_values(self, plugin: str, values: dict[str, Any]) -> None:
        """Raise SettingsError unless `values` are settings the plugin's schema accepts."""
        validator = self.validator(plugin)
        error = _first_error(validator, values)
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path)
            raise SettingsError(
                f"does not match the schema of {plugin}"
                + (f" at {where}" if where else "")
                + f": {error.message}"
            )

    def check_text(self, plugin: str, raw: str) -> dict[str, Any]:
        """The values of a settings text; SettingsError (with the line) if it is too large,
        not JSON5, not an object, or not what the schema accepts."""
        size = len(raw.encode("utf-8"))
        if size > self.limits.max_setting_bytes:
            raise SettingsError(
                f"{size} bytes, more than max_setting_bytes ({self.limits.max_setting_bytes})"
            )
        values = parse_settings(raw)
        self.check_values(plugin, values)
        return values


def _first_error(validator: Draft7Validator, values: dict[str, Any]) -> ValidationError | None:
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    return errors[0] if errors else None
