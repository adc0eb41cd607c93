"""Files from the source distributions of installed packages, for tests on real notebooks
written by others (nbformat's, nbconvert's, nbclient's own test notebooks).

Nothing is copied into this repository: the sdist of the *installed* version is fetched
once with `pip download` into a cache ($CRDTSYNC_SDIST_CACHE, default
~/.cache/jupyter-crdt-sync/sdists) and read from the archive. When pip cannot reach an
index the calling test is skipped with pip's own error.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import pytest

CACHE = Path(
    os.environ.get("CRDTSYNC_SDIST_CACHE", Path.home() / ".cache" / "jupyter-crdt-sync" / "sdists")
)


def sdist(name: str) -> Path:
    """The cached sdist archive of the installed version of `name`, fetched if missing."""
    spec = f"{name}=={version(name)}"
    found = sorted(CACHE.glob(f"{name.replace('-', '_')}-{version(name)}.tar.gz"))
    found += sorted(CACHE.glob(f"{name}-{version(name)}.tar.gz"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += ["-d", str(CACHE), spec]
    # pip prepares the sdist's metadata: with the build backend installed here (hatchling)
    # that needs no index; setuptools sdists need `wheel`, which a build environment has.
    result = subprocess.run(
        [*command, "--no-build-isolation"], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot download {spec} with pip: {result.stderr[-500:]}")
    return sdist(name)


@functools.cache
def files_in_sdist(name: str, suffix: str) -> dict[str, bytes]:
    """Every file of `name`'s sdist whose name ends with `suffix`, by its path in the archive."""
    found = {}
    with tarfile.open(sdist(name)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(suffix):
                found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return found
