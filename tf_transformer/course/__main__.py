"""`python -m tf_transformer.course build [--check]`."""

import sys

from tf_transformer.course.build.notebooks import main

if __name__ == "__main__":
    sys.exit(main())
