"""The grader's rows as Gradescope, PrairieLearn, JUnit, Canvas and long-CSV
output, each validated against a schema written here from its documentation
(no network): Gradescope's autograder specification (`results.json`),
PrairieLearn's external grading reference (`Grading results`), the Apache Ant
JUnit XSD (as a structure checked with `xml.etree`), Canvas's gradebook
import columns."""

import csv
import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from tf_transformer.course.grading import lms
from tf_transformer.course.grading.reports import Row

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
# Gradescope autograder specification, "Output format": every key is optional;
# a top-level score is required unless each test has one.
GRADESCOPE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": FORMAT,
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
        "leaderboard": {"type": "array"},
    },
    "anyOf": [
        {"required": ["score"]},
        {
            "required": ["tests"],
            "properties": {"tests": {"items": {"required": ["score"]}}},
        },
    ],
}
IMAGES = {
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "string"},
            {
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string"}, "label": {"type": "string"}},
            },
        ]
    },
}
# PrairieLearn external grading, "Grading results": `score` in [0, 1] is the
# one required field of a gradable result; `gradable: false` needs none and
# may carry `format_errors` (a string or strings).
PRAIRIELEARN_SCHEMA = {
    "type": "object",
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "format_errors": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
            ]
        },
        "images": IMAGES,
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "points", "max_points"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "points": {"type": "number", "minimum": 0},
                    "max_points": {"type": "number", "minimum": 0},
                    "message": {"type": "string"},
                    "output": {"type": "string"},
                    "images": IMAGES,
                },
            },
        },
    },
    "if": {"properties": {"gradable": {"const": False}}, "required": ["gradable"]},
    "then": {},
    "else": {"required": ["score"]},
}


def rows_of_class():
    """Two students, lesson 05 and lesson 08, every status, a notebook row."""
    alice = "doejane_12345_901_05_masking.ipynb"
    bob = "smithbob_LATE_777_902_08_training.ipynb"
    return [
        Row(alice, 5, "padding_mask", 1, 1, "passed", "all checks passed", "no"),
        Row(alice, 5, "causal_mask", 0, 2, "failed", "the diagonal is masked", "no"),
        Row(bob, 8, "", 0, 0, "timeout", "the notebook did not finish within 600 s"),
        Row(bob, 8, "masked_loss", 2, 2, "passed", "all checks passed", "yes"),
        Row(bob, 8, "masked_accuracy", 0, 1, "error", "ZeroDivisionError on line 3"),
        Row(bob, 8, "transformer_schedule", 0, 1, "missing", "not defined"),
        Row(bob, 8, "transformer", 0, 3, "not_attempted", "NotImplementedError"),
    ]


def one(submission_prefix):
    return [r for r in rows_of_class() if r.submission.startswith(submission_prefix)]


def test_gradescope_results_follow_the_autograder_specification():
    results = lms.gradescope_results(one("smithbob"), execution_time=41.6)
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["score"] == 2.0
    assert results["execution_time"] == 42
    assert [t["name"] for t in results["tests"]] == [
        "Lesson 08: notebook run",
        "Lesson 08: masked_loss",
        "Lesson 08: masked_accuracy",
        "Lesson 08: transformer_schedule",
        "Lesson 08: transformer",
    ]
    assert [t["status"] for t in results["tests"]] == ["failed", "passed"] + [
        "failed"
    ] * 3
    assert [t["max_score"] for t in results["tests"]] == [0, 2, 1, 1, 3]
    assert results["tests"][2]["output"] == "error: ZeroDivisionError on line 3"
    hidden = lms.gradescope_results(one("doejane"), visibility="after_due_date")
    jsonschema.validate(hidden, GRADESCOPE_SCHEMA)
    assert {t["visibility"] for t in hidden["tests"]} == {"after_due_date"}


def test_gradescope_results_refuse_bad_arguments():
    with pytest.raises(ValueError, match="one submission.*2"):
        lms.gradescope_results(rows_of_class())
    with pytest.raises(ValueError, match="visibility='public'"):
        lms.gradescope_results(one("doejane"), visibility="public")


def test_prairielearn_results_follow_the_external_grader_reference():
    results = lms.prairielearn_results(one("smithbob"))
    jsonschema.validate(results, PRAIRIELEARN_SCHEMA)
    assert results["gradable"] is True
    assert results["score"] == pytest.approx(2 / 7)
    assert [(t["points"], t["max_points"]) for t in results["tests"]][1:] == [
        (2, 2),
        (0, 1),
        (0, 1),
        (0, 3),
    ]
    unreadable = [Row("x.ipynb", "", "", 0, 0, "error", "not a readable notebook")]
    results = lms.prairielearn_results(unreadable)
    jsonschema.validate(results, PRAIRIELEARN_SCHEMA)
    assert results["gradable"] is False
    assert results["format_errors"] == ["not a readable notebook"]


def test_the_schemas_reject_what_the_documentation_does_not_allow():
    """The schemas are not vacuous: the errors a writer could make fail them."""
    good = lms.gradescope_results(one("doejane"))
    for broken in (
        {**good, "tests": [{**good["tests"][0], "status": "error"}]},
        {**good, "visibility": "public"},
        {**good, "score": "1"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, GRADESCOPE_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"score": 1.5}, PRAIRIELEARN_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"gradable": True}, PRAIRIELEARN_SCHEMA)


# Apache Ant's JUnit XSD, as element -> (required attributes, optional
# attributes, allowed children); text is allowed in failure and error only.
JUNIT = {
    "testsuites": (
        set(),
        {"name", "tests", "failures", "errors", "time", "skipped"},
        {"testsuite"},
    ),
    "testsuite": (
        {"name", "tests", "failures", "errors"},
        {"time", "skipped", "id", "package", "hostname", "timestamp"},
        {"properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, set(), set()),
    "testcase": (
        {"name", "classname"},
        {"time"},
        {"failure", "error", "skipped", "system-out", "system-err"},
    ),
    "failure": (set(), {"message", "type"}, set()),
    "error": (set(), {"message", "type"}, set()),
    "skipped": (set(), {"message"}, set()),
}
INTEGER = {"tests", "failures", "errors", "skipped", "id"}


def validate_junit(element):
    required, optional, children = JUNIT[element.tag]
    attributes = set(element.attrib)
    assert required <= attributes, (element.tag, required - attributes)
    assert attributes <= required | optional, (element.tag, attributes)
    for key in attributes & INTEGER:
        assert int(element.get(key)) >= 0
    if "time" in attributes:
        assert float(element.get("time")) >= 0
    for child in element:
        assert child.tag in children, (element.tag, child.tag)
        validate_junit(child)
    if element.tag == "testcase":
        assert len(element) <= 1
    if element.tag == "testsuite":
        order = [c.tag for c in element]
        assert order == sorted(
            order, key=["properties", "testcase", "system-out", "system-err"].index
        )
        cases = element.findall("testcase")
        assert int(element.get("tests")) == len(cases)
        for kind in ("failure", "error"):
            assert int(element.get(kind + "s")) == sum(
                c.find(kind) is not None for c in cases
            )


def test_junit_xml_has_the_ant_schema_structure(tmp_path):
    path = lms.write_junit(rows_of_class(), tmp_path / "grades.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    validate_junit(root)
    suites = {s.get("name"): s for s in root}
    bob = suites["smithbob_LATE_777_902_08_training.ipynb"]
    outcomes = {c.get("name"): [x.tag for x in c] for c in bob.findall("testcase")}
    assert outcomes == {
        "notebook run": ["error"],
        "masked_loss": [],
        "masked_accuracy": ["error"],
        "transformer_schedule": ["failure"],
        "transformer": ["failure"],
    }
    failure = suites["doejane_12345_901_05_masking.ipynb"].find("testcase/failure")
    assert failure.get("message") == failure.text == "the diagonal is masked"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (
        "7",
        "3",
        "2",
    )


def test_canvas_gradebook_has_one_column_per_lesson(tmp_path):
    rows = rows_of_class()
    rows.append(Row("alice/05_masking.ipynb", 5, "padding_mask", 1, 1, "passed", "ok"))
    pattern = lms.StudentPattern()
    path = lms.write_canvas(rows, tmp_path / "canvas.csv", pattern=pattern)
    table = list(csv.reader(path.open(encoding="utf-8")))
    assert table[0] == [*lms.CANVAS_IDENTITY_COLUMNS, "Lesson 05", "Lesson 08"]
    assert table[1] == ["Points Possible", "", "", "", "", "3", "7"]
    assert table[2:] == [
        ["alice", "", "", "", "", "1", ""],
        ["doejane", "12345", "", "", "", "1", ""],
        ["smithbob", "777", "", "", "", "", "2"],
    ]
    assert pattern.unmatched == ["alice/05_masking.ipynb"]


def test_student_pattern_is_configurable_and_checked(tmp_path):
    rows = [Row("S-042/05.ipynb", 5, "causal_mask", 2, 2, "passed", "ok")]
    pattern = lms.StudentPattern(r"^S-(?P<sis_user_id>\d+)/")
    table = lms.canvas_gradebook(rows, pattern=pattern, column="Masks {lesson} (991)")
    assert table[0][-1] == "Masks 5 (991)"
    assert table[2] == ["042", "", "042", "", "", "2"]
    with pytest.raises(ValueError, match="named group|name at least one group"):
        lms.StudentPattern(r"(\d+)")
    with pytest.raises(ValueError, match="not a regular expression"):
        lms.StudentPattern(r"(?P<id>")
    with pytest.raises(ValueError, match="column='Lesson {n}'"):
        lms.canvas_gradebook(rows, column="Lesson {n}")


def test_long_csv_has_a_row_per_exercise_with_the_student(tmp_path):
    path = lms.write_long_csv(rows_of_class(), tmp_path / "long.csv")
    table = list(csv.DictReader(path.open(encoding="utf-8")))
    assert tuple(table[0]) == lms.LONG_CSV_COLUMNS
    assert len(table) == 7
    assert {(r["student"], r["student_id"]) for r in table} == {
        ("doejane", "12345"),
        ("smithbob", "777"),
    }
    assert table[1]["exercise"] == "causal_mask" and table[1]["status"] == "failed"


def test_per_submission_json_goes_to_a_file_or_a_folder(tmp_path):
    single = lms.write_per_submission(
        one("doejane"), tmp_path / "results.json", lms.gradescope_results
    )
    assert single == [tmp_path / "results.json"]
    many = lms.write_per_submission(
        rows_of_class(), tmp_path / "pl", lms.prairielearn_results
    )
    assert sorted(p.name for p in many) == [
        "doejane_12345_901_05_masking.json",
        "smithbob_LATE_777_902_08_training.json",
    ]
    for path in many:
        jsonschema.validate(json.loads(path.read_text()), PRAIRIELEARN_SCHEMA)
