"""Wall-clock time of each solution notebook, run top to bottom in a fresh kernel.

This is the "runtime" column of the README's course map: the time a student
waits for `Run all` on an answered lesson (kernel start and imports included).
Prints a Markdown table and the total.

    python bench/lesson_runtimes.py [NOTEBOOK ...]   # default: solutions/*.ipynb
"""

import argparse
import os
import pathlib
import time

import machine
import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(path: pathlib.Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = parser.parse_args()
    notebooks = args.notebooks or sorted((ROOT / "solutions").glob("[0-9]*.ipynb"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inherited by kernels

    print(machine.header())
    print("| notebook | seconds |")
    print("|---|---|")
    total = 0.0
    for path in notebooks:
        seconds = run(path)
        total += seconds
        print(f"| {path.name} | {seconds:.0f} |", flush=True)
    print(f"| total | {total:.0f} |")


if __name__ == "__main__":
    main()
