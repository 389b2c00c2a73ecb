"""Peak memory of grading one notebook of each lesson: what container to ask for.

Each lesson's solution notebook is graded alone by `tf-transformer grade`
in a fresh process; while it runs, the process and everything it starts
(the judge, the answers' processes, the notebook's kernel) are sampled every
`--interval` seconds. Two peaks are reported:

- RSS: the sum of the processes' resident sets. Pages the processes share
  (TensorFlow's libraries, mapped from the same files) are counted once per
  process, so this overstates what they hold together: an upper bound.
- held: what they hold together, estimated as the sum of the memory unique
  to each process (USS) plus the largest shared part of any one of them
  (taking the shared pages, mostly TensorFlow's libraries, to be the same
  in every process). It does not depend on other programs on the machine
  that map the same libraries (proportional set sizes would), so it
  estimates what a container of its own charges for them.

- largest own peak by role: each process's own peak resident set (its
  `VmHWM`, which the kernel keeps, so no sample can miss it), the largest
  of each role: the grader's command, the judge, the answers' process and,
  with `--execute`, the notebook runner and the Jupyter kernel.

With `--execute` the row also says when the notebook's run did not finish
(its kernel died or timed out): such a peak is not that of a full run.

The first row is the baseline: `python -c "import tensorflow"` alone.

    python bench/grade_memory.py [--lessons 2 5 8] [--execute]
        [--sandbox auto] [--json out.json] [--figure docs/grade_memory.png]
    python bench/grade_memory.py --plot a.json b.json --figure docs/grade_memory.png
"""

import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import machine
import process_tree

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIB = 1 << 20
ENTRY = "import sys, tf_transformer_cli; sys.exit(tf_transformer_cli.main())"


class TreeSampler(threading.Thread):
    """Samples the memory of a process and its descendants until it ends.

    Besides the sums of each sample, it keeps every process's own peak
    resident set (`VmHWM`, kept by the kernel, so a process's peak between
    two samples, or a short-lived process seen once, is not missed) and
    which role it has (`process_tree.role`): the Jupyter kernel of an
    executed notebook is a grandchild of bubblewrap, several levels below
    the command, and is found the same way as the judge.
    """

    def __init__(self, process: subprocess.Popen, interval: float):
        super().__init__(daemon=True)
        self.process = process
        self.interval = interval
        self.peak_rss = self.peak_held = 0
        self.most_processes = 0
        self.own_peaks: dict[tuple[int, str], tuple[str, int]] = {}

    def sample(self) -> None:
        rss = unique = shared = 0
        tree = process_tree.descendants(self.process.pid)
        for pid in tree:
            sizes = process_tree.memory(pid)
            started = process_tree.cpu_seconds(pid)
            if sizes is None or started is None:
                continue
            rss += sizes["rss"]
            unique += sizes["unique"]
            shared = max(shared, sizes["rss"] - sizes["unique"])
            # The role is read again each time: a child sampled between its
            # fork and its exec still shows its parent's command line.
            key, name = (pid, started[0]), process_tree.role(pid)
            if name == "other" and key in self.own_peaks:
                name = self.own_peaks[key][0]
            self.own_peaks[key] = (name, sizes["hwm"])
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_held = max(self.peak_held, unique + shared)
        self.most_processes = max(self.most_processes, len(tree))

    def run(self):
        while self.process.poll() is None:
            self.sample()
            time.sleep(self.interval)

    def roles(self) -> dict[str, int]:
        """The largest own peak (bytes) of any process of each role; the
        command itself is `grader`. Processes under 32 MiB (bwrap,
        setpriv) are left out."""
        peaks: dict[str, int] = {}
        for (pid, _), (name, peak) in self.own_peaks.items():
            name = "grader" if pid == self.process.pid else name
            if peak >= 32 * MIB:
                peaks[name] = max(peaks.get(name, 0), peak)
        return peaks


def measure(command: list[str], interval: float, grades: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    sampler = TreeSampler(process, interval)
    sampler.start()
    stderr = process.stderr.read()
    process.wait()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{stderr[-2000:]}")
    result = {
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(sampler.peak_rss / MIB),
        "peak_held_mib": round(sampler.peak_held / MIB),
        "processes": sampler.most_processes,
        "own_peaks_mib": {k: round(v / MIB) for k, v in sampler.roles().items()},
    }
    if grades is not None:
        result["notebook_row"] = notebook_row(grades)
    return result


def notebook_row(grades: str) -> str:
    """The status of the graded notebook's run: `ok`, or the notebook row's
    status and message (the kernel died, or the run timed out: its memory is
    then not the memory of a full run)."""
    with open(grades, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["exercise"]:
                return f"{row['status']}: {row['message']}"
    return "ok"


def solution(lesson: int) -> pathlib.Path:
    return next((ROOT / "solutions").glob(f"{lesson:02d}_*.ipynb"))


def figure(panels: dict[str, dict], path: pathlib.Path) -> None:
    """One panel per measured run (its title: what was run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 3.6 * len(panels)), sharey=True, squeeze=False
    )
    for ax, (title, results) in zip(axes[:, 0], panels.items(), strict=True):
        names = list(results)
        rss = [results[n]["peak_rss_mib"] / 1024 for n in names]
        held = [results[n]["peak_held_mib"] / 1024 for n in names]
        positions = range(len(names))
        ax.bar([p - 0.2 for p in positions], rss, 0.4, label="sum of RSS (upper bound)")
        ax.bar(
            [p + 0.2 for p in positions], held, 0.4, label="held together (estimate)"
        )
        ax.axhline(0.75, color="black", linestyle="--", linewidth=1)
        ax.text(-0.45, 0.8, "Gradescope's default limit (768 MB)", fontsize=8)
        ax.set_xticks(list(positions), names, rotation=30, ha="right")
        ax.set_ylabel("peak memory (GiB)")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("one solution notebook graded (process tree of the command)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def title_of(execute: bool, sandbox: str) -> str:
    what = "graded and run" if execute else "graded without running (--no-execute)"
    return f"{what}; sandbox {sandbox}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, nargs="+", default=list(range(2, 16)))
    parser.add_argument("--execute", action="store_true", help="run the notebooks too")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--interval", type=float, default=0.2, metavar="SECONDS")
    parser.add_argument("--json", type=pathlib.Path)
    parser.add_argument("--figure", type=pathlib.Path)
    parser.add_argument(
        "--plot",
        type=pathlib.Path,
        nargs="+",
        metavar="JSON",
        help="only draw --figure from earlier --json files, one panel each",
    )
    args = parser.parse_args()
    if args.plot:
        saved = [json.loads(p.read_text()) for p in args.plot]
        figure({item["title"]: item["results"] for item in saved}, args.figure)
        return
    print(machine.header())
    title = title_of(args.execute, args.sandbox)
    print(f"one solution notebook per lesson, {title}")
    print()
    print(
        "| what | peak RSS sum (MiB) | peak held (MiB) | largest own peak "
        "by role (MiB) | processes | seconds |"
    )
    print("|---|---|---|---|---|---|", flush=True)
    results = {}

    def record(name: str, command: list[str], grades: str | None = None) -> None:
        item = results[name] = measure(command, args.interval, grades)
        roles = ", ".join(f"{k} {v}" for k, v in item["own_peaks_mib"].items())
        print(
            f"| {name} | {item['peak_rss_mib']} | {item['peak_held_mib']} | "
            f"{roles} | {item['processes']} | {item['seconds']} |",
            flush=True,
        )
        if item.get("notebook_row", "ok") != "ok":
            print(f"  ({name}: the notebook's run: {item['notebook_row']})")
        if args.json:  # after each row: a stopped run keeps what it measured
            saved = {"title": title, "header": machine.header(), "results": results}
            args.json.write_text(json.dumps(saved, indent=1) + "\n")

    record("import tensorflow", [sys.executable, "-c", "import tensorflow"])
    with tempfile.TemporaryDirectory() as folder:
        for lesson in args.lessons:
            grades = os.path.join(folder, f"grades{lesson:02d}.csv")
            command = [sys.executable, "-c", ENTRY, "grade", str(solution(lesson))]
            command += ["--out", grades, "--sandbox", args.sandbox]
            if not args.execute:
                command.append("--no-execute")
            record(f"lesson {lesson:02d}", command, grades)
    if args.figure:
        figure({title: results}, args.figure)


if __name__ == "__main__":
    main()
