"""The instructor's grader (`tf-transformer grade ...`), by role:

- `grade`: the entry: finds submissions, confines and runs them, and makes
  one row per exercise;
- `runner`: the notebook runner (a child process, run as a script);
- `answers`: the answers' process, which defines and runs the student's
  answers and never holds the references (a child process, run as a script);
- `judge`: the judge process, which runs the checks with the references;
- `remote`: the judge's handles on the answers' process;
- `wire`: the messages between the judge and the answers' process;
- `confine`: resource limits and the bubblewrap sandbox;
- `likeness`: whether an answer is the library's code;
- `reports`: CSV, JSON, Markdown feedback and the summary.

Nothing is imported here: the child processes load their modules alone.
"""

# Public: nothing here; each role's module is imported by name.
