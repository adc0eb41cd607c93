"""A real `jupyter server` in a subprocess, for tests and benchmarks that need signals,
crashes, the command line, or a server that does not share the test's event loop."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(
        self,
        root_dir: Path,
        *,
        config: dict[str, Any] | None = None,
        runtime_dir: Path | None = None,
        extra_args: list[str] | None = None,
        data_dir: Path | None = None,
        token: str | None = None,
        python: str = sys.executable,
        extensions: dict[str, bool] | None = None,
        ready_endpoint: str = "api/crdtsync/status",
    ) -> None:
        self.root_dir = root_dir
        self.port = free_port()
        self.token = token or secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.runtime_dir = runtime_dir or root_dir.parent / f"runtime-{self.port}"
        self.log_path = root_dir.parent / f"server-{self.port}.log"
        # Pass the data dir of an earlier server to restart "the same" server.
        self.data_dir = data_dir or root_dir.parent / f"data-{self.port}"
        self._config = config or {}
        self._extra_args = extra_args or []
        # Another Python (a virtual environment with another server extension: the
        # benchmarks' jupyter-collaboration), its extensions, and what answers once it is up.
        self._python = python
        self._extensions = {"jupyter_crdt_sync": True} if extensions is None else extensions
        self._ready_endpoint = ready_endpoint
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        config_dir = self.root_dir.parent / f"config-{self.port}"
        config_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "ServerApp": {
                "jpserver_extensions": self._extensions,
                "allow_root": True,
                "open_browser": False,
                "port": self.port,
                "port_retries": 0,
                "ip": "127.0.0.1",
                "root_dir": str(self.root_dir),
            },
            "IdentityProvider": {"token": self.token},
        }
        for section, values in self._config.items():
            config.setdefault(section, {}).update(values)
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        env = dict(os.environ)
        env["JUPYTER_CONFIG_DIR"] = str(config_dir)
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime_dir)
        # The store of room histories lives in the data dir: one per server under test.
        env["JUPYTER_DATA_DIR"] = str(self.data_dir)
        env.pop("JUPYTER_TOKEN", None)
        if self._python != sys.executable:
            env.pop("PYTHONPATH", None)  # nothing of this checkout in another environment
        self.process = subprocess.Popen(
            [self._python, "-m", "jupyter_server", *self._extra_args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        # The log goes through a pipe, copied by this process: a test may limit the
        # server's file writes (RLIMIT_FSIZE) without silencing its log.
        self._log_copier = threading.Thread(target=self._copy_log, daemon=True)
        self._log_copier.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                self.get_json(self._ready_endpoint)
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not start within {timeout} s:\n{self.log()}")

    def get_json(self, endpoint: str) -> Any:
        request = urllib.request.Request(
            self.url + endpoint, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def _copy_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.log_path, "ab") as log_file:
            for line in self.process.stdout:
                log_file.write(line)
                log_file.flush()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """A graceful stop (SIGTERM), as a service manager or Ctrl-C does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT, as Ctrl+C in a terminal or a process manager sends it (stdin is not a
        tty here, as under most process managers)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server at once (kill -9 by default): no cleanup of any kind runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        if self.process is not None:
            self._log_copier.join(10)

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
