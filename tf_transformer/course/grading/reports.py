"""The grader's reports: the CSV of rows, a JSON report, Markdown feedback
per submission, and the summary printed per exercise."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

CSV_COLUMNS = (
    "submission",
    "lesson",
    "exercise",
    "points",
    "max_points",
    "status",
    "message",
    "same_as_library",
)


@dataclasses.dataclass
class Row:
    """One CSV row: a submission's result on one exercise."""

    submission: str
    lesson: int | str
    exercise: str
    points: float
    max_points: float
    status: str
    message: str
    same_as_library: str = ""

    def as_csv(self) -> dict[str, str]:
        return {
            "submission": self.submission,
            "lesson": str(self.lesson),
            "exercise": self.exercise,
            "points": f"{self.points:g}",
            "max_points": f"{self.max_points:g}",
            "status": self.status,
            "message": self.message,
            "same_as_library": self.same_as_library,
        }


def write_csv(rows: list[Row], path: Path | str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())


def summary(rows: list[Row]) -> list[dict]:
    """Per exercise: submissions, mean score, pass rate."""
    table: dict[tuple, list[Row]] = {}
    for row in rows:
        if row.exercise:
            table.setdefault((row.lesson, row.exercise), []).append(row)
    out = []
    for (lesson, exercise), group in table.items():
        out.append(
            {
                "lesson": lesson,
                "exercise": exercise,
                "submissions": len(group),
                "mean_points": sum(r.points for r in group) / len(group),
                "max_points": group[0].max_points,
                "pass_rate": sum(r.status == "passed" for r in group) / len(group),
            }
        )
    return out


def format_summary(rows: list[Row]) -> str:
    lines = [f"{'lesson':>6}  {'exercise':<30} {'n':>4} {'mean':>9} {'passed':>7}"]
    for item in summary(rows):
        mean = f"{item['mean_points']:.2f}/{item['max_points']:g}"
        lines.append(
            f"{item['lesson']!s:>6}  {item['exercise']:<30} {item['submissions']:>4} "
            f"{mean:>9} {item['pass_rate']:>7.0%}"
        )
    return "\n".join(lines)


def write_json(rows: list[Row], path: Path | str) -> None:
    report = {
        "columns": list(CSV_COLUMNS),
        "submissions": _by_submission(rows),
        "summary": summary(rows),
    }
    Path(path).write_text(
        json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _by_submission(rows: list[Row]) -> list[dict]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.submission, []).append(row)
    return [
        {
            "submission": identity,
            "lesson": group[0].lesson,
            "points": sum(r.points for r in group),
            "max_points": sum(r.max_points for r in group),
            "exercises": [dataclasses.asdict(r) for r in group],
        }
        for identity, group in grouped.items()
    ]


STATUS_ICONS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "timeout": "⏱️",
    "missing": "❔",
    "not_attempted": "⏳",
}


def write_feedback(rows: list[Row], folder: Path | str) -> list[Path]:
    """One Markdown file per submission, named after its identity."""
    folder = Path(folder)
    written = []
    for item in _by_submission(rows):
        name = (
            re.sub(r"[^A-Za-z0-9._-]+", "__", item["submission"]).strip("_")
            or "submission"
        )
        path = folder / f"{Path(name).stem if name.endswith('.ipynb') else name}.md"
        lines = [
            f"# Feedback: {item['submission']}",
            "",
            f"Lesson {item['lesson']} — {item['points']:g}/{item['max_points']:g} "
            "points.",
            "",
            "| exercise | points | status | what to look at |",
            "|---|---|---|---|",
        ]
        for row in item["exercises"]:
            icon = STATUS_ICONS.get(row["status"], "")
            message = row["message"].replace("|", "\\|")
            lines.append(
                f"| {row['exercise'] or '—'} | {row['points']:g}/{row['max_points']:g} "
                f"| {icon} {row['status']} | {message} |"
            )
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written
