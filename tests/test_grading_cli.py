"""The grading commands through the `tf-transformer` entry point, each in a
subprocess: a class graded as two shards by two processes at once, merged,
written in every LMS format; a resumed run; the merge's refusals; `check`.

The class is lesson 05's crafted notebooks (two function exercises, checked
without running the notebooks), renamed as Canvas names its downloads.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from test_grading_autograder import entry_point
from test_grading_lms import GRADESCOPE_SCHEMA, PRAIRIELEARN_SCHEMA, validate_junit

from tf_transformer.course.checks import exercises_of_lesson
from tf_transformer.course.grading import shards

FIXTURES = Path(__file__).parent / "fixtures" / "grade"
STUDENTS = {"alice": 101, "dave": 102, "frank": 103, "gina": 104, "kim": 105}
GRADING = ["--no-execute", "--lesson", "5", "--sandbox", "none", "--timeout", "60"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class, its two parts (graded at the same time) and their merge."""
    root = tmp_path_factory.mktemp("class")
    submissions = root / "submissions"
    submissions.mkdir()
    for name, number in STUDENTS.items():
        shutil.copy(
            FIXTURES / name / "05_masks.ipynb",
            submissions / f"{name}_{number}_9{number}_05_masks.ipynb",
        )
    parts = root / "parts"
    parts.mkdir()
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, tf_transformer_cli; sys.exit(tf_transformer_cli.main())",
                "grade",
                str(submissions),
                "--shard",
                f"{index}/2",
                "--out",
                str(parts / f"part-{index}.csv"),
                *GRADING,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=entry_env(),
        )
        for index in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    outputs = root / "outputs"
    outputs.mkdir()
    merged = entry_point(
        "grade",
        "merge",
        *sorted(str(p) for p in parts.glob("part-*.csv")),
        "--out",
        str(outputs / "grades.csv"),
        "--gradescope",
        str(outputs / "gradescope"),
        "--prairielearn",
        str(outputs / "prairielearn"),
        "--junit",
        str(outputs / "grades.xml"),
        "--canvas",
        str(outputs / "canvas.csv"),
        "--long-csv",
        str(outputs / "long.csv"),
        "--json",
        str(outputs / "report.json"),
        timeout=300,
    )
    assert merged.returncode == 0, merged.stderr
    return root


def entry_env():
    return dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_two_shards_graded_at_once_merge_into_the_whole_class(graded):
    parts = sorted((graded / "parts").glob("part-*.csv"))
    names = [{r["submission"] for r in read_csv(p)} for p in parts]
    assert names[0].isdisjoint(names[1]) and all(names)
    for index, part in enumerate(parts):
        manifest = json.loads(shards.manifest_path(part).read_text())
        assert (manifest["shard"], manifest["shards"]) == (index, 2)
        assert set(manifest["submissions"]) == names[index]
    rows = read_csv(graded / "outputs" / "grades.csv")
    assert {r["submission"] for r in rows} == names[0] | names[1]
    assert len(rows) == 2 * len(STUDENTS)  # two exercises each
    alice = [r for r in rows if r["submission"].startswith("alice_")]
    assert [r["status"] for r in alice] == ["passed", "passed"]
    assert all(len(r["notebook_sha256"]) == 64 for r in rows)


def test_the_merge_writes_every_format(graded):
    outputs = graded / "outputs"
    results = sorted((outputs / "gradescope").glob("*.json"))
    assert len(results) == len(STUDENTS)
    for path in results:
        jsonschema.validate(json.loads(path.read_text()), GRADESCOPE_SCHEMA)
    for path in (outputs / "prairielearn").glob("*.json"):
        jsonschema.validate(json.loads(path.read_text()), PRAIRIELEARN_SCHEMA)
    validate_junit(ET.parse(outputs / "grades.xml").getroot())
    canvas = list(csv.reader((outputs / "canvas.csv").open(encoding="utf-8")))
    assert canvas[0][-1] == "Lesson 05" and canvas[1][0] == "Points Possible"
    assert sorted((row[0], row[1]) for row in canvas[2:]) == sorted(
        (name, str(number)) for name, number in STUDENTS.items()
    )
    long = read_csv(outputs / "long.csv")
    assert {r["student_id"] for r in long} == {str(n) for n in STUDENTS.values()}
    report = json.loads((outputs / "report.json").read_text())
    assert len(report["submissions"]) == len(STUDENTS)


def test_resume_regrades_only_the_changed_notebook(graded):
    part = graded / "parts" / "part-0.csv"
    before = read_csv(part)
    mine = sorted({r["submission"] for r in before})
    changed = graded / "submissions" / mine[0]
    blank = json.loads(changed.read_text())
    blank["cells"] = [c for c in blank["cells"] if c["cell_type"] != "code"]
    changed.write_text(json.dumps(blank))
    again = entry_point(
        "grade",
        str(graded / "submissions"),
        "--shard",
        "0/2",
        "--out",
        str(part),
        "--resume",
        *GRADING,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr
    assert f"resuming: {len(mine) - 1} submission(s) kept" in again.stderr
    progress = [line for line in again.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 1 and mine[0] in progress[0]
    after = read_csv(part)
    assert [r for r in after if r["submission"] != mine[0]] == [
        r for r in before if r["submission"] != mine[0]
    ]
    assert {r["status"] for r in after if r["submission"] == mine[0]} == {"missing"}


def test_merge_refuses_a_missing_shard_and_an_overlap(graded, tmp_path):
    part = graded / "parts" / "part-1.csv"
    missing = entry_point("grade", "merge", str(part), "--out", str(tmp_path / "g.csv"))
    assert missing.returncode == 2
    assert "missing shards: 0/2" in missing.stderr
    copy = tmp_path / "copy.csv"
    shutil.copy(part, copy)
    shutil.copy(shards.manifest_path(part), shards.manifest_path(copy))
    overlap = entry_point(
        "grade", "merge", str(part), str(copy), "--out", str(tmp_path / "g.csv")
    )
    assert overlap.returncode == 2 and "overlap" in overlap.stderr
    assert not (tmp_path / "g.csv").exists()


def test_check_prints_the_students_table():
    run = entry_point(
        "check",
        str(FIXTURES / "alice" / "05_masks.ipynb"),
        "--no-execute",
        "--sandbox",
        "none",
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "05_masks.ipynb (lesson 05): 2/2 points"
    assert lines[1].split() == [
        "exercise",
        "points",
        "status",
        "what",
        "to",
        "look",
        "at",
    ]
    assert [line.split()[:2] for line in lines[2:]] == [
        [ex.name, f"{ex.points}/{ex.points}"] for ex in exercises_of_lesson(5)
    ]
