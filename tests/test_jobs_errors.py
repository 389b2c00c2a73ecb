"""The jobs' guard: expected failures are one line with exit status 2, bugs
keep their traceback."""

import pytest

from tf_transformer import jobs


def guarded(error):
    def handler(args):
        raise error

    return jobs._guarded(handler)


@pytest.mark.parametrize(
    "error",
    [
        jobs.JobError("no such directory"),
        ValueError("Cannot load 'run/model.keras'"),
        FileNotFoundError("no such file"),
        RuntimeError("--strategy tpu needs a TPU"),
    ],
)
def test_an_expected_failure_is_one_line_with_exit_status_2(error, capsys):
    assert guarded(error)(None) == 2
    assert capsys.readouterr().err == f"error: {error}\n"


@pytest.mark.parametrize("error", [TypeError("a bug"), KeyError("a bug")])
def test_a_bug_is_not_turned_into_an_error_line(error):
    with pytest.raises(type(error)):
        guarded(error)(None)
