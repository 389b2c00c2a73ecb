"""The grader's messages between processes are typed records: each goes
through one JSON line and comes back equal, and a line that is not the
message it should be is refused."""

import json

import pytest

from tf_transformer.course.grading import wire


def through_a_line(message):
    line = message.dumps()
    assert line.endswith("\n") and "\n" not in line[:-1]
    return type(message).loads(line)


@pytest.mark.parametrize(
    "message",
    [
        wire.JudgeRequest(
            nonce="ab12",
            cells=["def f():\n    return 1"],
            groups=[["padding_mask", "causal_mask"]],
            timeout=10.0,
            commands=[["python", "answers.py"]],
            env={"HOME": "/tmp/x"},
            cwd="/tmp/x",
        ),
        wire.Verdict("causal_mask", "failed", "the diagonal is False"),
        wire.Done(),
        wire.AnswersInit(cells=["x = 1"], objects={"f": "f"}, hidden_modules={}),
        wire.Ready({"FeedForward": wire.Definition(defined=True, is_class=True)}),
        wire.Request(op="call", id=3, target=["d", "causal_mask"], payload="eA=="),
        wire.Reply(id=3, value={"int": 4}),
        wire.Reply(id=4, raised=wire.Raised("ZeroDivisionError", "division by zero")),
        wire.NotebookRun("dead", cell=2),
    ],
    ids=lambda message: type(message).__name__,
)
def test_a_message_comes_back_equal_through_one_json_line(message):
    assert through_a_line(message) == message


def test_nested_records_come_back_as_records():
    reply = wire.Reply.loads(
        json.dumps({"id": 1, "raised": {"type": "KeyError", "message": "'k'"}})
    )
    assert isinstance(reply.raised, wire.Raised)
    assert reply.raised.student_raised is False
    ready = wire.Ready.loads(json.dumps({"ready": {"f": {"defined": False}}}))
    assert ready.ready["f"] == wire.Definition(defined=False)


@pytest.mark.parametrize(
    "kind, data, named",
    [
        (wire.Reply, {"id": 1, "valeu": 3}, "valeu"),
        (wire.Verdict, {"exercise": "causal_mask", "status": "passed"}, "message"),
        (wire.Raised, ["ValueError"], "JSON object"),
        (wire.Ready, {"ready": {"f": {"is_class": True}}}, "defined"),
    ],
)
def test_a_line_that_is_not_the_message_is_refused(kind, data, named):
    with pytest.raises(ValueError, match=named):
        kind.from_dict(data)
