"""Shards, their merge and resuming, on hand-written parts (no grading)."""

import hashlib
import re

import pytest

from tf_transformer.course.grading import shards

COLUMNS = ["submission", "exercise", "points", "notebook_sha256"]


@pytest.mark.parametrize(
    "text, expected", [("0/1", (0, 1)), ("3/8", (3, 8)), (" 7 / 8 ", (7, 8))]
)
def test_parse_shard(text, expected):
    assert shards.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["8/8", "1/0", "-1/4", "2", "a/b", "1/2/3"])
def test_bad_shards_are_refused(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        shards.parse_shard(text)


def test_every_submission_lands_in_exactly_one_shard():
    items = [(f"student{i:03d}/05_masking.ipynb", None) for i in range(400)]
    parts = [shards.select(items, i, 8) for i in range(8)]
    assert sorted(x for part in parts for x in part) == sorted(items)
    assert min(len(p) for p in parts) > 25  # no shard left (nearly) empty
    # The split depends on the name only: a late submission moves nobody.
    late = [*items, ("late/05_masking.ipynb", None)]
    for i in range(8):
        assert set(parts[i]) <= set(shards.select(late, i, 8))
    assert (
        shards.shard_of("alice/05.ipynb", 8)
        == int.from_bytes(hashlib.sha256(b"alice/05.ipynb").digest()[:8], "big") % 8
    )


def write_part(folder, index, count, submissions, rows=None):
    path = folder / f"part{index}.csv"
    rows = (
        rows
        if rows is not None
        else [
            {"submission": s, "exercise": "e", "points": "1", "notebook_sha256": "x"}
            for s in submissions
        ]
    )
    shards.write_rows(path, COLUMNS, rows)
    shards.write_manifest(path, index, count, submissions)
    return path


def test_merge_joins_complete_parts(tmp_path):
    parts = [write_part(tmp_path, i, 3, [f"s{i}a", f"s{i}b"]) for i in (2, 0, 1)]
    columns, rows = shards.merge(parts)
    assert columns == COLUMNS
    assert [r["submission"] for r in rows] == ["s0a", "s0b", "s1a", "s1b", "s2a", "s2b"]


def test_an_empty_shard_is_a_part_like_any_other(tmp_path):
    parts = [write_part(tmp_path, 0, 2, ["a"]), write_part(tmp_path, 1, 2, [])]
    assert len(shards.merge(parts)[1]) == 1


def test_merge_refuses_missing_overlapping_and_unfinished_parts(tmp_path):
    a = write_part(tmp_path, 0, 3, ["a"])
    b = write_part(tmp_path, 1, 3, ["b"])
    with pytest.raises(shards.MergeError, match="missing shards: 2/3"):
        shards.merge([a, b])
    (tmp_path / "again").mkdir()
    twice = write_part(tmp_path / "again", 1, 3, ["c"])
    with pytest.raises(shards.MergeError, match="overlap: .* both shard 1/3"):
        shards.merge([a, b, twice])
    c = write_part(tmp_path, 2, 3, ["b"])
    with pytest.raises(shards.MergeError, match="overlap: 'b' is in"):
        shards.merge([a, b, c])
    unfinished = write_part(tmp_path, 2, 3, ["c", "d"], rows=[])
    with pytest.raises(shards.MergeError, match="shard 2/3 did not finish"):
        shards.merge([a, b, unfinished])
    other = write_part(tmp_path / "again", 2, 4, ["c"])
    with pytest.raises(shards.MergeError, match="different numbers of shards"):
        shards.merge([a, b, other])
    (tmp_path / "loose.csv").write_text("submission\n")
    with pytest.raises(shards.MergeError, match="no manifest"):
        shards.merge([tmp_path / "loose.csv"])


def test_reusable_rows_need_the_same_notebook(tmp_path):
    same, changed, new = (tmp_path / n for n in ("same.ipynb", "changed.ipynb", "new"))
    for path in (same, changed, new):
        path.write_text(path.name)
    digest = shards.file_sha256(same)
    assert digest == hashlib.sha256(b"same.ipynb").hexdigest()
    rows = [
        {
            "submission": "same",
            "exercise": "e1",
            "points": "1",
            "notebook_sha256": digest,
        },
        {
            "submission": "same",
            "exercise": "e2",
            "points": "0",
            "notebook_sha256": digest,
        },
        {
            "submission": "changed",
            "exercise": "e",
            "points": "1",
            "notebook_sha256": digest,
        },
    ]
    report = shards.write_rows(tmp_path / "grades.csv", COLUMNS, rows)
    items = [("same", same), ("changed", changed), ("new", new)]
    reused = shards.reusable_rows(report, items)
    assert list(reused) == ["same"] and len(reused["same"]) == 2
    assert shards.reusable_rows(tmp_path / "absent.csv", items) == {}
