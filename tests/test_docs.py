"""The README and docs/ stay true: their links lead somewhere, their commands
parse, their Python runs.

Links: every relative link of README.md and docs/*.md names a file of the
repository, and a `#fragment` names a heading of that file (GitHub's
anchors). Commands: every line of a `bash` block, and every inline code span
that starts a command (`tf-transformer …`, `python …`, `pytest`, `pip …`), is
checked without running it: `tf-transformer` arguments are parsed by the
command's own parser, a `python script.py` or `python -m module` must exist
and its parser must accept the arguments, `pip install` and `pytest` must be
what `.ci/run` runs. A program the checks do not know is an error, so a new
kind of command gets a check.
"""

import argparse
import contextlib
import io
import re
import runpy
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# Programs a reader runs that are not this repository's: only checked to be
# what they are (their options are their documentation's business).
EXTERNAL = {"echo", "conda", "jupyter", "nbgrader", "bash"}
COMMAND_START = re.compile(
    r"^(?:[A-Z_]+=\S+ )*(?:tf-transformer|python3?|pytest|pip)\b"
)


# ------------------------------------------------------------------ links


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(path: Path, text: str) -> list[str]:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{path.name}: {target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{path.name}: {target} (no such heading)")
    return problems


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file_and_heading(path):
    assert broken_links(path, path.read_text()) == []


def test_docs_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for path in DOCUMENTS[1:]:
        assert f"(docs/{path.name}" in readme, path.name


# --------------------------------------------------------------- commands


def commands(text: str) -> list[str]:
    """The shell command lines of a Markdown text (bash blocks, inline code)."""
    found = []
    for language, body in FENCE.findall(text):
        if language in ("bash", "sh", "shell"):
            found += [line for line in body.splitlines() if line.strip()]
    for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", FENCE.sub("", text)):
        span = " ".join(span.split())
        if COMMAND_START.match(span):
            found.append(span)
    return found


class _Parsed(Exception):
    pass


@contextlib.contextmanager
def parse_only():
    """Any argparse parser parses, then stops the program before it runs."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise _Parsed

    argparse.ArgumentParser.parse_args = parse_args
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original


def parses(run, argv) -> str | None:
    """None if the program's parser accepts `argv`, else argparse's message."""
    saved = sys.argv
    sys.argv = argv
    err = io.StringIO()
    try:
        with parse_only(), contextlib.redirect_stderr(err):
            run()
    except _Parsed:
        return None
    except SystemExit as error:
        return err.getvalue().strip().splitlines()[-1] if error.code else None
    finally:
        sys.argv = saved
    return "the program ran past its argument parsing"


def check_python(words: list[str]) -> str | None:
    if words[:2] == ["-m", "venv"]:
        return None
    if words[0] == "-m":
        module, args = words[1], words[2:]
        if module in dev_tools():
            return None  # a tool of the [dev] extra, e.g. `python -m build`
        if not (ROOT / Path(*module.split("."))).exists():
            return f"no module {module} in the repository"
        return parses(
            lambda: runpy.run_module(module, run_name="__main__", alter_sys=True),
            [module, *args],
        )
    script, args = ROOT / words[0], words[1:]
    if not script.is_file():
        return f"no script {words[0]}"
    if "ArgumentParser" not in script.read_text():
        return f"{words[0]} takes no options" if args else None
    sys.path.insert(0, str(script.parent))
    try:
        return parses(
            lambda: runpy.run_path(str(script), run_name="__main__"),
            [
                str(script),
                *args,
            ],
        )
    finally:
        sys.path.remove(str(script.parent))


def dev_tools() -> set[str]:
    """The distribution names of the [dev] extra."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    return {re.split(r"[<>=!~\[ ]", requirement)[0] for requirement in extras["dev"]}


def check_pip(words: list[str]) -> str | None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    if words == ["wheel", "--no-deps", "."]:
        return None  # the course's wheel, built from this repository
    if words[:2] != ["install", "-e"] or len(words) != 3:
        return "only `pip install -e .[extra]` or `pip wheel --no-deps .` is documented"
    target = re.fullmatch(r"\.(?:\[(\w+)\])?", words[2])
    if target is None or (target.group(1) and target.group(1) not in extras):
        return f"{words[2]} is not this project with one of its extras"
    return None


def check_segment(words: list[str], line: str) -> str | None:
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefix
        words = words[1:]
    for redirect in (">", ">>", "<"):
        if redirect in words:
            words = words[: words.index(redirect)]
    words = [word for word in words if word not in ("…", "...")]
    program, args = words[0], words[1:]
    if program == "tf-transformer":
        from tf_transformer.cli import build_parser

        parser = build_parser()
        if len(args) == 1 and not args[0].startswith("-"):  # names a command
            names = parser._subparsers._group_actions[0].choices
            return None if args[0] in names else f"no command {args[0]!r}"
        return parses(lambda: parser.parse_args(), ["tf-transformer", *args])
    if program in ("python", "python3"):
        return check_python(args)
    if program == "pip":
        return check_pip(args)
    if program == "pytest":
        if args[:2] == ["-m", "not slow"]:  # the fast tier: a subset of CI's run
            narrowing = [a for a in args[2:] if not a.startswith("-")]
            missing = [a for a in narrowing if not (ROOT / a.split("::")[0]).exists()]
            return f"no {missing[0]} in the repository" if missing else None
        ci = (ROOT / ".ci" / "run").read_text()
        return None if line in ci else f"CI does not run {line!r}"
    if program in (".", "source"):
        return None if args == [".venv/bin/activate"] else "unknown activation"
    if program in EXTERNAL:
        missing = [a for a in args if "/" in a and not (ROOT / a).exists()]
        files = [a for a in args if a.endswith((".yml", ".toml"))]
        missing += [a for a in files if not (ROOT / a).exists()]
        if program == "jupyter" and missing:
            return f"no {missing[0]} in the repository"
        return f"no {files[0]}" if files and missing else None
    return f"no check for the program {program!r}: add one to tests/test_docs.py"


def broken_commands(text: str) -> list[str]:
    problems = []
    for line in commands(text):
        words = shlex.split(line, comments=True)
        segments, current = [], []
        for word in words:
            if word in ("&&", "|", ";"):
                segments.append(current)
                current = []
            else:
                current.append(word)
        segments.append(current)
        for segment in filter(None, segments):
            problem = check_segment(segment, line.strip())
            if problem:
                problems.append(f"{line}: {problem}")
    return problems


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_parses(path):
    assert broken_commands(path.read_text()) == []


def test_the_readme_has_commands_to_check():
    lines = commands((ROOT / "README.md").read_text())
    assert any(line.startswith("tf-transformer train") for line in lines)
    assert any(line.startswith("python bench/") for line in lines)


def test_broken_links_and_commands_are_reported(tmp_path):
    page = tmp_path / "page.md"
    text = (
        "# Title\n\n"
        "[ok](#title) [gone](missing.md) [no heading](#nowhere)\n\n"
        "```bash\n"
        "tf-transformer train --epochs 2\n"
        "tf-transformer train --epochs many\n"
        "tf-transformer trian\n"
        "python bench/no_such_script.py\n"
        "pip install -e .[gpu]\n"
        "make all\n"
        'pytest -m "not slow"\n'
        'pytest -m "not slow" tests/test_nowhere.py\n'
        "pytest -k attention\n"
        "```\n\n"
        "Run `python bench/decode.py --no-such-flag` or "
        "`python -m tf_transformer.course build --no-such-flag`.\n"
    )
    page.write_text(text)
    assert broken_links(page, text) == [
        "page.md: missing.md (no such file)",
        "page.md: #nowhere (no such heading)",
    ]
    problems = broken_commands(text)
    assert [problem.split(":")[0] for problem in problems] == [
        "tf-transformer train --epochs many",
        "tf-transformer trian",
        "python bench/no_such_script.py",
        "pip install -e .[gpu]",
        "make all",
        'pytest -m "not slow" tests/test_nowhere.py',
        "pytest -k attention",
        "python bench/decode.py --no-such-flag",
        "python -m tf_transformer.course build --no-such-flag",
    ]
    assert "'many'" in problems[0] and "--no-such-flag" in problems[-1]


# ----------------------------------------------------------------- python


def test_the_readme_python_examples_run(data_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
    readme = (ROOT / "README.md").read_text()
    blocks = [body for language, body in FENCE.findall(readme) if language == "python"]
    assert len(blocks) >= 2
    for body in blocks:
        if "check(" in body:  # the students' check cell: needs an answer
            continue
        exec(compile(body, "README.md", "exec"), {})
