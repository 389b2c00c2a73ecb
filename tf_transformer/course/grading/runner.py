"""The notebook runner (run as a script by `grade.py`).

`runner.py PATH TIMEOUT` sets the resource limits the grader asks for
(`confine.apply_limits`), runs the notebook top to bottom in a fresh Jupyter
kernel (errors in a cell do not stop the others; outputs are discarded so
huge outputs cost nothing) and prints one JSON line: ``{"status": "ok"}``,
or ``{"status": "dead", "cell": N}`` if the kernel died (`wire.NotebookRun`).
"""

from __future__ import annotations

import json
import os
import sys

if __package__:
    from tf_transformer.course.grading.confine import apply_limits
else:  # run as a script: the runner never imports tf_transformer (and TF)
    from confine import apply_limits


def execute(path: str, timeout: float) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    class QuietClient(NotebookClient):
        """Keeps no outputs: a notebook printing gigabytes costs nothing."""

        def output(self, outs, msg, display_id, cell_index):
            return None

    notebook = nbformat.read(path, as_version=4)
    client = QuietClient(
        notebook,
        timeout=max(1, int(timeout)),
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": os.getcwd()}},
        record_timing=False,
    )
    current = {"cell": -1}
    original = client.async_execute_cell

    async def tracked(cell, cell_index, *args, **kwargs):
        current["cell"] = cell_index
        return await original(cell, cell_index, *args, **kwargs)

    client.async_execute_cell = tracked
    try:
        client.execute()
    except DeadKernelError:
        return {"status": "dead", "cell": current["cell"]}
    except TimeoutError:
        return {"status": "timeout", "cell": current["cell"]}
    except Exception as error:  # noqa: BLE001 - report, never crash the grader
        name = type(error).__name__
        if "Dead" in name or "dead" in str(error).lower():
            return {"status": "dead", "cell": current["cell"]}
        if "Timeout" in name:
            return {"status": "timeout", "cell": current["cell"]}
        return {
            "status": "error",
            "cell": current["cell"],
            "message": f"{name}: {error}"[:300],
        }
    return {"status": "ok"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: runner.py PATH TIMEOUT", file=sys.stderr)
        return 2
    apply_limits()
    print(json.dumps(execute(argv[0], float(argv[1]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.path[:] = [
        p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)
    ]
    sys.exit(main())
