"""Shared notebook rooms for Jupyter: one CRDT document per notebook path."""

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import CRDTSync

    return [{"module": "jupyter_crdt_sync", "app": CRDTSync}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # Lets `jupyter labextension develop` link the built front-end in place.
    return [{"src": "labextension", "dest": "jupyter-crdt-sync"}]
