"""Grading a class on many machines: shards, their merge, and resuming.

**Shards.** `grade SUBMISSIONS --shard I/N` grades the submissions whose
name (the `submission` column) hashes to `I` among `N` (`shard_of`: SHA-256
of the name, modulo N; I counts from 0, as Slurm's array index and
Kubernetes' `JOB_COMPLETION_INDEX` can). The choice depends only on the
name, so every machine computes the same split without talking to the
others, and a submission that arrives late does not move the rest. Beside
its CSV a shard writes a manifest, `<CSV>.shard.json`: its I and N and the
submissions it was given.

**Merge.** `grade merge PART... --out grades.csv` joins the parts' rows
(`merge`), and refuses, naming what is wrong: parts of different N, two
parts of one shard or one submission in two parts (overlaps), a shard
without its part (missing), a part whose rows lack a submission its
manifest lists (a shard that did not finish).

**Resume.** Each row carries the SHA-256 of the notebook it was graded
from (`notebook_sha256`). Rerun with `--resume`, the grader keeps the rows
of every submission whose notebook still has that hash and grades only the
others (`reusable_rows`), so a run stopped after 3,000 of 3,200 notebooks
grades 200 more. The CSV is written as submissions finish, so a run that
is killed leaves the rows it had.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

MANIFEST_SUFFIX = ".shard.json"


def parse_shard(text: str) -> tuple[int, int]:
    """`"I/N"` as `(I, N)`, with 0 <= I < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if match is None:
        raise ValueError(
            f"`shard` must be I/N, such as 0/8 (I from 0 to N-1). Received: {text!r}"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(
            f"`shard` I/N needs N >= 1 and 0 <= I < N. Received: shard={text!r}"
        )
    return index, count


def shard_of(submission: str, count: int) -> int:
    """The shard (0 to count-1) that grades `submission`."""
    digest = hashlib.sha256(submission.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select(items: Sequence[tuple[str, Path]], index: int, count: int) -> list:
    """The (submission, path) pairs of shard `index` of `count`."""
    return [item for item in items if shard_of(item[0], count) == index]


def manifest_path(csv_path: Path | str) -> Path:
    return Path(str(csv_path) + MANIFEST_SUFFIX)


def write_manifest(
    csv_path: Path | str, index: int, count: int, submissions: Iterable[str]
) -> Path:
    path = manifest_path(csv_path)
    manifest = {"shard": index, "shards": count, "submissions": list(submissions)}
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_rows(csv_path: Path | str) -> tuple[list[str], list[dict[str, str]]]:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def reusable_rows(
    csv_path: Path | str, items: Sequence[tuple[str, Path]]
) -> dict[str, list[dict[str, str]]]:
    """The previous rows, by submission, of every submission in `items` whose
    notebook's SHA-256 equals the one its rows were written with. A
    submission with any row without a hash, or a changed hash, is not
    reused; neither is one the previous run wrote only partly (never: rows
    of one submission are written together)."""
    path = Path(csv_path)
    if not path.is_file():
        return {}
    columns, rows = read_rows(path)
    if "notebook_sha256" not in columns:
        return {}
    previous: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        previous.setdefault(row["submission"], []).append(row)
    reused = {}
    for submission, notebook in items:
        group = previous.get(submission)
        if not group:
            continue
        hashes = {row["notebook_sha256"] for row in group}
        if len(hashes) == 1 and hashes != {""} and hashes == {file_sha256(notebook)}:
            reused[submission] = group
    return reused


class MergeError(ValueError):
    """Parts that cannot be merged; the message says why."""


def merge(parts: Sequence[Path | str]) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of all parts, in shard order; raises `MergeError`
    on overlaps, missing shards and unfinished parts."""
    if not parts:
        raise MergeError("no PART given")
    manifests = {}
    for part in parts:
        path = manifest_path(part)
        if not path.is_file():
            raise MergeError(
                f"{part}: no manifest {path.name} beside it (was it written by "
                "`grade --shard I/N`?)"
            )
        manifests[Path(part)] = json.loads(path.read_text(encoding="utf-8"))
    counts = {m["shards"] for m in manifests.values()}
    if len(counts) != 1:
        listed = ", ".join(f"{p}: {m['shards']}" for p, m in manifests.items())
        raise MergeError(
            f"the parts were split into different numbers of shards ({listed})"
        )
    count = counts.pop()
    by_shard: dict[int, Path] = {}
    for part, manifest in manifests.items():
        index = manifest["shard"]
        if index in by_shard:
            raise MergeError(
                f"overlap: {by_shard[index]} and {part} are both shard {index}/{count}"
            )
        by_shard[index] = part
    missing = sorted(set(range(count)) - set(by_shard))
    if missing:
        raise MergeError(
            f"missing shards: {', '.join(f'{i}/{count}' for i in missing)}"
        )
    columns: list[str] | None = None
    merged: list[dict[str, str]] = []
    owner: dict[str, Path] = {}
    for index in range(count):
        part = by_shard[index]
        part_columns, rows = read_rows(part)
        if columns is None:
            columns = part_columns
        elif part_columns != columns:
            raise MergeError(f"{part}: columns {part_columns} differ from {columns}")
        graded = {row["submission"] for row in rows}
        unfinished = [s for s in manifests[part]["submissions"] if s not in graded]
        if unfinished:
            raise MergeError(
                f"{part}: shard {index}/{count} did not finish: no rows for "
                f"{len(unfinished)} of its submissions ({unfinished[0]!r}, ...); "
                "rerun it with --resume"
            )
        for submission in graded:
            if submission in owner:
                raise MergeError(
                    f"overlap: {submission!r} is in {owner[submission]} and {part}"
                )
            owner[submission] = part
        merged += rows
    return columns or [], merged


def write_rows(path: Path | str, columns: Sequence[str], rows: Iterable[dict]) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path
