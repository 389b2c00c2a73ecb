"""The course machinery: notebook build, self-checks and the grader.

- `tf_transformer.course.build` writes `lessons/` from `solutions/` and the
  library source (`python -m tf_transformer.course build [--check]`).
- `tf_transformer.course.checks` holds one check per exercise
  (`check("causal_mask", causal_mask)`).
- `tf_transformer.course.grade` grades folders of submitted notebooks
  (`tf-transformer grade ...`).

Nothing here is imported by `tf_transformer` itself, so the library loads
without the notebook tooling.
"""
