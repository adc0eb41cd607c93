"""A throwaway Jupyter server with the extension, for tests: a subprocess on loopback with
a random token and its own root, config, runtime and data directories.

    with LocalServer(root_dir, kernel_root=Path("notebooks")) as server:
        ...  server.url, server.token

`kernel_root` lets the kernels start in another directory than the contents root: the
notebook runner serves scratch copies from a temporary root, while each kernel starts in
the directory of the original notebook, so relative paths in cells mean what they mean
in the notebook's own folder.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STATUS_ENDPOINT = "api/crdtsync/status"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    def __init__(
        self,
        root_dir: Path,
        *,
        kernel_root: Path | None = None,
        config: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.root_dir = root_dir
        self.kernel_root = kernel_root
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._config = config or {}
        self._state_dir: tempfile.TemporaryDirectory[str] | None = None
        self._log_file: Any = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        assert self._state_dir is not None
        return Path(self._state_dir.name, "server.log")

    def start(self, timeout: float = 60.0) -> LocalServer:
        if self.process is not None:
            raise RuntimeError("LocalServer already started")
        self._state_dir = tempfile.TemporaryDirectory(prefix="crdtsync-server-")
        state = Path(self._state_dir.name)
        config: dict[str, dict[str, Any]] = {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_crdt_sync": True},
                "allow_root": True,
                "open_browser": False,
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "root_dir": str(self.root_dir),
            },
            "IdentityProvider": {"token": self.token},
            # A room's state is written to the file within a tenth of a second.
            "CRDTSync": {"save_delay": 0.05, "save_max_delay": 0.5, "store_path": ":memory:"},
        }
        if self.kernel_root is not None:
            config["MappingKernelManager"] = {"root_dir": str(self.kernel_root)}
        for section, values in self._config.items():
            config.setdefault(section, {}).update(values)
        (state / "config").mkdir()
        (state / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        env = dict(os.environ)
        env.pop("JUPYTER_TOKEN", None)
        env["JUPYTER_CONFIG_DIR"] = str(state / "config")
        env["JUPYTER_RUNTIME_DIR"] = str(state / "runtime")
        env["JUPYTER_DATA_DIR"] = str(state / "data")
        # Kernel specs are found through the data path: keep the user's and the system's.
        env["JUPYTER_PATH"] = os.pathsep.join(_jupyter_data_path(env))
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server"],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log()
                self.stop()
                raise RuntimeError(f"the Jupyter server exited at start:\n{log}")
            try:
                self._get(STATUS_ENDPOINT)
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        log = self.log()
        self.stop()
        raise RuntimeError(f"the Jupyter server did not start within {timeout} s:\n{log}")

    def _get(self, endpoint: str) -> Any:
        request = urllib.request.Request(
            self.url + endpoint, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and remove its directories."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._state_dir is not None:
            self._state_dir.cleanup()
            self._state_dir = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _jupyter_data_path(env: dict[str, str]) -> list[str]:
    from jupyter_core.paths import jupyter_path

    return [env["JUPYTER_DATA_DIR"], *jupyter_path()]
