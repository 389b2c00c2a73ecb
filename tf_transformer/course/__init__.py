"""The course machinery, by audience:

- student: `tf_transformer.course.checks` (one self-check per exercise,
  `check("causal_mask", causal_mask)`) and `tf_transformer.course.workbook`
  (answered classes carried from lesson to lesson);
- instructor: `tf_transformer.course.grading` grades folders of submitted
  notebooks (`tf-transformer grade ...`);
- maintainer: `tf_transformer.course.build` writes `lessons/` from
  `solutions/` and the library source
  (`python -m tf_transformer.course build [--check]`) and draws the
  lessons' diagrams.

Nothing here is imported by `tf_transformer` itself, so the library loads
without the notebook tooling.
"""

# Public: nothing here; each audience imports its subpackage by name.
