#!/usr/bin/env python
"""`pytest --nb-outputs` against `pytest --nbval` on one corpus of notebooks, in one run.

Writes a corpus of small notebooks (prints, results, a loop, a displayed PNG, an output
tagged to be ignored, a cell tagged raises-exception) with their correct outputs, and
every tenth notebook with one wrong stored output. Then runs pytest on the corpus with
each plugin (wall clock of the whole pytest process: start-up, kernels, comparison) and
compares the verdicts notebook by notebook. Prints a markdown table.

    pip install nbval               # nbval is not a dependency of the project
    python benchmarks/bench_nb_outputs.py                  # 50 notebooks
    python benchmarks/bench_nb_outputs.py --notebooks 5    # smoke run
    python benchmarks/bench_nb_outputs.py --workers 2      # both under pytest-xdist
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)
PLUGIN = "jupyter_crdt_sync.testing.plugin"


def png(shade: int) -> str:
    rows = b"".join(b"\x00" + bytes([shade]) * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (8).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00"
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    return base64.b64encode(raw + chunk(b"IEND", b"")).decode()


def corpus_notebook(number: int, wrong: bool) -> Any:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    image = png(number % 256)
    cells = [
        (
            f"n = {number}\nprint('notebook', n)",
            [new_output("stream", text=f"notebook {number}\n")],
        ),
        ("n * 3", [new_output("execute_result", {"text/plain": str(number * 3)})]),
        (
            "for i in range(5):\n    print(i * n)",
            [new_output("stream", text="".join(f"{i * number}\n" for i in range(5)))],
        ),
        (
            "from IPython.display import Image, display\nimport base64\n"
            f"display(Image(data=base64.b64decode({image!r})))",
            [
                new_output(
                    "display_data",
                    {"image/png": image, "text/plain": "<IPython.core.display.Image object>"},
                )
            ],
        ),
        ("import random\nprint(random.random())", [new_output("stream", text="0.1\n")]),
        ("{'n': n, 'square': n * n}", [new_output("execute_result", {"text/plain": ""})]),
        ("1 / 0", []),
    ]
    made = []
    for count, (source, outputs) in enumerate(cells, start=1):
        cell = new_code_cell(source, execution_count=count, outputs=outputs)
        made.append(cell)
    made[1].outputs[0]["execution_count"] = 2
    made[5].outputs[0]["execution_count"] = 6
    made[5].outputs[0]["data"]["text/plain"] = repr({"n": number, "square": number * number})
    made[4].metadata["tags"] = ["nbval-ignore-output", "nb-outputs-ignore-output"]
    made[6].metadata["tags"] = ["raises-exception"]
    made[6].outputs = [
        new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    ]
    if wrong:
        made[2].outputs[0]["text"] = "wrong\n"
    notebook = new_notebook(cells=made)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return nbformat.from_dict(notebook)


def write_corpus(folder: Path, count: int) -> None:
    import nbformat

    for number in range(count):
        nbformat.write(corpus_notebook(number, number % 10 == 9), folder / f"nb{number:03}.ipynb")


def run_pytest(folder: Path, args: list[str], workers: int) -> tuple[float, dict[str, bool], str]:
    """Wall seconds, the verdict of each notebook (True: every cell passed), the summary."""
    junit = folder.parent / f"junit-{args[0].strip('-')}.xml"
    command = [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit}", "--rootdir", str(folder), str(folder)]
    if workers:
        command += ["-n", str(workers)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    seconds = time.perf_counter() - started
    verdicts: dict[str, bool] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        where = " ".join(case.get(key, "") for key in ("file", "classname", "name"))
        found = re.search(r"nb\d{3}", where)
        name = found.group(0) if found else where
        failed = any(child.tag in ("failure", "error") for child in case)
        verdicts[name] = verdicts.get(name, True) and not failed
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    return seconds, verdicts, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="pytest-xdist workers (0: none)")
    options = parser.parse_args()
    registered = any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))
    ours = ["--nb-outputs", "-p", "no:nbval", *([] if registered else ["-p", PLUGIN])]
    theirs = ["--nbval", "-p", "no:crdtsync"]
    with tempfile.TemporaryDirectory(prefix="bench-nb-outputs-") as tmp:
        folder = Path(tmp, "corpus")
        folder.mkdir()
        write_corpus(folder, options.notebooks)
        print(f"corpus: {options.notebooks} notebooks of 7 cells", file=sys.stderr)
        results = {}
        for name, args in (("nbval", theirs), ("--nb-outputs", ours)):
            print(f"running pytest {args[0]} ...", file=sys.stderr)
            results[name] = run_pytest(folder, args, options.workers)
    print(
        f"\n{options.notebooks} notebooks, workers: {options.workers or 'none'}; "
        f"Python {platform.python_version()}, nbval {version('nbval')}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| plugin | wall s | notebooks passed | pytest summary |")
    print("| --- | --- | --- | --- |")
    for name, (seconds, verdicts, summary) in results.items():
        passed = sum(verdicts.values())
        print(f"| {name} | {seconds:.1f} | {passed}/{len(verdicts)} | {summary} |")
    nbval_verdicts, our_verdicts = results["nbval"][1], results["--nb-outputs"][1]
    differ = sorted(n for n in nbval_verdicts if nbval_verdicts[n] != our_verdicts.get(n))
    print(f"\nnotebooks with different verdicts: {differ or 'none'}")


if __name__ == "__main__":
    main()
