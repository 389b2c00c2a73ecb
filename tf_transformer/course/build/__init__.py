"""Maintainer's tools: the lesson notebooks and their diagrams.

- `notebooks` writes `lessons/` from `solutions/` and the library source
  (`python -m tf_transformer.course build [--check]`).
- `diagrams` draws the architecture pictures the lessons show.
"""
