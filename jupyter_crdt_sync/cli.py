"""`jupyter crdtsync`: the command line of jupyter-crdt-sync.

    jupyter crdtsync status [--json] [--url URL] [--token TOKEN]
    jupyter crdtsync history PATH [--json]          the versions of a notebook
    jupyter crdtsync show PATH VERSION              the notebook at a version (JSON)
    jupyter crdtsync restore PATH VERSION [--cell ID ...]

`status` shows the live rooms of running Jupyter servers, read from their
`api/crdtsync/status`; the others use the history endpoints (docs/history.md). All take
the same --url and --token.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from jupyter_core.paths import jupyter_runtime_dir

from ._version import __version__

STATUS_ENDPOINT = "api/crdtsync/status"
HISTORY_ENDPOINT = "api/crdtsync/history/"
RESTORE_ENDPOINT = "api/crdtsync/restore/"
TIMEOUT = 10.0
ENABLE_HINT = "jupyter server extension enable jupyter_crdt_sync"


class CLIError(Exception):
    """A failure explained to the user in one message, without a traceback."""


@dataclass
class Server:
    url: str  # ends with "/"
    token: str
    root_dir: str | None = None


# -- finding servers -----------------------------------------------------------------------


def running_servers(runtime_dir: str) -> list[Server]:
    """The servers whose `jpserver-<pid>.json` is in `runtime_dir` and whose process lives.

    This reads the same files as `jupyter_server.serverapp.list_running_servers()` (and so
    `jupyter server list`), without importing `jupyter_server.serverapp`, which takes
    seconds, and without deleting the files of dead servers.
    """
    from jupyter_server.utils import check_pid

    servers = []
    for info_file in sorted(Path(runtime_dir).glob("jpserver-*.json")):
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written, or removed meanwhile
        if not (isinstance(info, dict) and isinstance(info.get("url"), str)):
            continue
        if isinstance(info.get("pid"), int) and check_pid(info["pid"]):
            servers.append(
                Server(_with_slash(info["url"]), info.get("token") or "", info.get("root_dir"))
            )
    return servers


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def server_from_url(url: str, token: str | None, runtime_dir: str) -> Server:
    """The server at `url`. The token is, in order: `token`, a `?token=` in the URL, the one
    a running server at that same URL wrote in the runtime dir, `$JUPYTER_TOKEN`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CLIError(f"invalid --url {url!r}: expected http://HOST:PORT/[BASE_URL/]")
    base = _with_slash(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    if token is None:
        token = parse_qs(parts.query).get("token", [None])[0]
    if token is None:
        known = {server.url: server.token for server in running_servers(runtime_dir)}
        token = known.get(base, os.environ.get("JUPYTER_TOKEN", ""))
    return Server(base, token)


# -- asking a server -----------------------------------------------------------------------


def _get(server: Server, endpoint: str, body: Any = None) -> bytes:
    """GET the endpoint, or POST `body` to it as JSON."""
    headers = {"Accept": "application/json"}
    if server.token:
        headers["Authorization"] = f"token {server.token}"
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    request = urllib.request.Request(server.url + endpoint, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return bytes(response.read())


def fetch_status(server: Server) -> dict[str, Any]:
    """The server's status JSON; a CLIError that says what to do when there is none."""
    status = _ask(server, STATUS_ENDPOINT)
    if not (isinstance(status, dict) and isinstance(status.get("rooms"), list)):
        raise CLIError(f"{server.url}{STATUS_ENDPOINT} did not answer with the status JSON")
    return status


class NotFoundError(CLIError):
    """The server answered 404 with a message of its own (no such notebook or version)."""


def _ask(server: Server, endpoint: str, body: Any = None) -> Any:
    """An endpoint's JSON (None if it is not JSON); a CLIError that says what went wrong."""
    try:
        return json.loads(_get(server, endpoint, body))
    except urllib.error.HTTPError as error:
        message = _server_message(error)
        if message and error.code == 404:
            raise NotFoundError(message) from None
        if message and error.code in (400, 403, 409, 500):
            raise CLIError(f"{server.url}{endpoint}: {message}") from None
        raise CLIError(_explain_http_error(server, error.code, endpoint)) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            raise CLIError(
                f"nothing is listening at {server.url} (connection refused). Check the URL, "
                "or see `jupyter server list` for the running servers."
            ) from None
        raise CLIError(f"cannot reach {server.url}: {error.reason}") from None
    except (OSError, http.client.HTTPException) as error:  # e.g. a timeout, not HTTP
        raise CLIError(f"cannot reach {server.url}: {error}") from None
    except ValueError:
        return None


def _server_message(error: urllib.error.HTTPError) -> str | None:
    """The message of a jupyter_server API error (`{"message": ...}`), if it has one."""
    try:
        message = json.loads(error.read()).get("message")
    except (ValueError, AttributeError, OSError):
        return None
    # jupyter_server's own pages (an unknown endpoint, a bad token) say only the reason.
    return str(message) if message and message not in ("Not Found", "Forbidden") else None


def _explain_http_error(server: Server, code: int, endpoint: str = STATUS_ENDPOINT) -> str:
    where = f"{server.url}{endpoint} answered HTTP {code}"
    if code in (401, 403):
        problem = "the server rejected the token" if server.token else "no token was given"
        return (
            f"{where}: {problem}. Pass the server's token with --token TOKEN "
            "(`jupyter server list` shows it)."
        )
    if code == 404:
        try:
            _get(server, "api/status")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return (
                    f"{where}, and so does {server.url}api/status: there is no Jupyter "
                    "server at this URL. Check the URL and the server's base_url."
                )
        except (OSError, ValueError):
            pass
        return (
            f"{where}: the jupyter_crdt_sync server extension is not enabled on this "
            f"server. Enable it with `{ENABLE_HINT}` and restart the server."
        )
    return f"{where}."


# -- showing the status --------------------------------------------------------------------


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def save_state(room: dict[str, Any]) -> str:
    if room.get("save_error"):
        return "error: " + " ".join(str(room["save_error"]).split())
    if room.get("dirty"):
        return "unsaved changes"
    if not room.get("last_saved"):
        return "no changes"
    try:
        saved = datetime.fromisoformat(room["last_saved"]).astimezone()
    except (TypeError, ValueError):
        return f"saved {room['last_saved']}"
    today = saved.date() == datetime.now().astimezone().date()
    return saved.strftime("saved %H:%M:%S" if today else "saved %Y-%m-%d %H:%M:%S")


def kernel_state(room: dict[str, Any]) -> str:
    kernel = room.get("kernel")
    if not kernel:
        return "-"
    state = str(kernel.get("execution_state", "?"))
    if kernel.get("queue"):
        state += f", {kernel['queue']} queued"
    return f"{kernel.get('name', '?')} ({state})"


COLUMNS = ("PATH", "PEERS", "CELLS", "SIZE", "SAVED", "KERNEL", "WIDGETS")
RIGHT_ALIGNED = {"PEERS", "CELLS", "SIZE", "WIDGETS"}


def format_status(server: Server, status: dict[str, Any]) -> str:
    """A header line naming the server, then one line per room."""
    header = f"Jupyter server {server.url}"
    if server.root_dir:
        header += f" (root {server.root_dir})"
    header += f", jupyter-crdt-sync {status.get('version', '?')}"
    rooms = status["rooms"]
    settings = settings_lines(status.get("settings"))
    if not rooms:
        return "\n".join([header, "  no open rooms", *settings])
    rows = [list(COLUMNS)] + [
        [
            str(room.get("path", "?")),
            str(room.get("peers", "?")),
            str(room.get("cells", "?")),
            human_size(int(room.get("doc_bytes", 0))),
            save_state(room),
            kernel_state(room),
            str(room.get("widgets", "?")),
        ]
        for room in rooms
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.rjust(width) if name in RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(COLUMNS, row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    return "\n".join([header, *lines, *settings])


def settings_lines(settings: dict[str, Any] | None) -> list[str]:
    """The settings room: one line, then one per settings file that was refused."""
    if not settings:
        return []
    written = save_state({"last_saved": settings.get("last_write")})
    written = (
        "last written" + written[len("saved") :]
        if written.startswith("saved")
        else "not written yet"
    )
    line = (
        f"settings: {settings.get('peers', '?')} peers, "
        f"{settings.get('plugins', '?')} plugins with settings, {written} "
        f"({settings.get('dir', '?')})"
    )
    errors = []
    for error in settings.get("errors") or []:
        where = str(error.get("file") or "")
        if where and error.get("line"):
            where += f" line {error['line']}"
        message = " ".join(str(error.get("message", "")).split())
        errors.append(f"  error: {where}: {message}" if where else f"  error: {message}")
    return [line, *errors]


# -- the command ---------------------------------------------------------------------------


def _servers(args: argparse.Namespace) -> list[Server]:
    """The server of --url, or every running one, with --token applied."""
    runtime_dir = jupyter_runtime_dir()
    if args.url:
        servers = [server_from_url(args.url, args.token, runtime_dir)]
    else:
        servers = running_servers(runtime_dir)
        if not servers:
            raise CLIError(
                f"no running Jupyter server found (looked for jpserver-*.json in {runtime_dir}"
                "). Start one with `jupyter server` or `jupyter lab`, or pass --url URL "
                "(and --token TOKEN) for a server elsewhere."
            )
        if args.token is not None:
            for server in servers:
                server.token = args.token
    return servers


def status_command(args: argparse.Namespace) -> int:
    servers = _servers(args)
    failed = False
    for index, server in enumerate(servers):
        try:
            status = fetch_status(server)
        except CLIError as error:
            print(f"jupyter crdtsync: {error}", file=sys.stderr)
            failed = True
            continue
        if args.json:
            print(json.dumps({"url": server.url, **status}))
        else:
            print(("\n" if index else "") + format_status(server, status))
    return 1 if failed else 0


# -- history -------------------------------------------------------------------------------


def _notebook_endpoint(endpoint: str, path: str) -> str:
    return endpoint + quote(path.strip("/"), safe="/")


def _ask_about(args: argparse.Namespace, endpoint: str, body: Any = None) -> Any:
    """Ask the server that has the notebook: the one of --url, else the first running
    server that does not answer 404 for it."""
    servers = _servers(args)
    not_found: NotFoundError | None = None
    for server in servers:
        try:
            return _ask(server, endpoint, body)
        except NotFoundError as error:
            not_found = error
            if len(servers) > 1:
                not_found = NotFoundError(f"{error} (on {server.url})")
    assert not_found is not None
    raise not_found


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def format_history(answer: dict[str, Any]) -> str:
    versions = answer.get("versions") or []
    header = f"{answer.get('path')}: {len(versions)} version{'s' if len(versions) != 1 else ''}"
    if answer.get("deleted"):
        header += f" (notebook deleted {_local_time(answer['deleted'])})"
    rows = [("VERSION", "TIME", "AUTHORS", "CELLS CHANGED", "")]
    for version in versions:
        note = ""
        if version.get("restored_from") is not None:
            cells = version.get("restored_cells")
            what = f"cells {', '.join(cells)}" if cells else "all"
            note = f"restored {what} from version {version['restored_from']}"
        rows.append(
            (
                str(version["version"]),
                _local_time(str(version["time"])),
                ", ".join(version.get("authors") or []) or "-",
                str(version.get("cells_changed", "")),
                note,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [header]
    for row in rows:
        cells = [row[0].rjust(widths[0]), *(row[c].ljust(widths[c]) for c in (1, 2, 3))]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def history_command(args: argparse.Namespace) -> int:
    answer = _ask_about(args, _notebook_endpoint(HISTORY_ENDPOINT, args.path))
    print(json.dumps(answer) if args.json else format_history(answer))
    return 0


def show_command(args: argparse.Namespace) -> int:
    endpoint = _notebook_endpoint(HISTORY_ENDPOINT, args.path) + f"/{args.version}"
    answer = _ask_about(args, endpoint)
    print(json.dumps(answer["content"], indent=1, ensure_ascii=False))
    return 0


def restore_command(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"version": args.version}
    if args.cell:
        body["cell_ids"] = args.cell
    answer = _ask_about(args, _notebook_endpoint(RESTORE_ENDPOINT, args.path), body)
    what = f"cells {', '.join(args.cell)} of" if args.cell else "the whole notebook to"
    print(f"{args.path}: restored {what} version {args.version}; now version {answer['version']}")
    return 0


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        metavar="URL",
        help="the server to ask, e.g. http://localhost:8888/ (include any "
        "base_url; a ?token=... in it is used as the token)",
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="the server's token (default: the one `jupyter server list` shows "
        "for that server, else $JUPYTER_TOKEN)",
    )


def _history_parsers(commands: Any) -> None:
    history = commands.add_parser(
        "history",
        help="list the versions of a notebook: time, authors, cells changed",
        description="List the recorded versions of a notebook (one per write-back to its "
        "file, at open and per restore), oldest first. PATH is relative to the server's "
        "root. Without --url, the first running server that knows the notebook answers.",
    )
    history.add_argument("path", metavar="PATH")
    history.add_argument("--json", action="store_true", help="print the history JSON")
    _server_options(history)
    history.set_defaults(handler=history_command)
    show = commands.add_parser(
        "show",
        help="print the notebook at a version (nbformat 4 JSON)",
        description="Print the notebook as it was at VERSION, as nbformat 4 JSON on stdout "
        "(redirect it to a .ipynb file to open it).",
    )
    show.add_argument("path", metavar="PATH")
    show.add_argument("version", metavar="VERSION", type=int)
    _server_options(show)
    show.set_defaults(handler=show_command)
    restore = commands.add_parser(
        "restore",
        help="bring a notebook (or some cells) back to a version",
        description="Bring the notebook, or only the cells given with --cell (deleted ones "
        "come back), back to VERSION. Every open window sees it at once; the state before "
        "stays in the history, so a restore can itself be undone.",
    )
    restore.add_argument("path", metavar="PATH")
    restore.add_argument("version", metavar="VERSION", type=int)
    restore.add_argument(
        "--cell", metavar="ID", action="append", help="a cell id to restore (repeatable)"
    )
    _server_options(restore)
    restore.set_defaults(handler=restore_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter crdtsync",
        description="jupyter-crdt-sync: inspect the shared notebook rooms of running "
        "Jupyter servers.",
        epilog="Exit status: 0 on success, 1 when a server could not be queried, "
        "2 for a usage error.",
    )
    parser.add_argument("--version", action="version", version=f"jupyter-crdtsync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = commands.add_parser(
        "status",
        help="show the open rooms: peers, cells, size, save state, kernel, widgets",
        description="Show the open rooms of running Jupyter servers: one line per notebook "
        "with its peers, cells, document size, save state, kernel and widgets. Without --url, "
        "ask every server that `jupyter server list` shows, each with its own token.",
        epilog="Exit status: 0 on success, 1 when a server could not be queried (none running, "
        "connection refused, extension not enabled, bad token).",
    )
    status.add_argument(
        "--json",
        action="store_true",
        help='print each server\'s status JSON on one line, with its "url" '
        "added, instead of a table",
    )
    _server_options(status)
    status.set_defaults(handler=status_command)
    _history_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except CLIError as error:
        print(f"jupyter crdtsync: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
