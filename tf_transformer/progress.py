"""Progress of the long steps: a live line on a terminal, whole lines in logs.

On a terminal (the stream is a tty) a step is one line that counts the
seconds, or the training steps, as they pass and ends with how long it took.
Anywhere else (a log file, CI, a notebook) a step writes whole lines only:
one when it starts, one when it ends, never a carriage return, so a log
reads top to bottom.

    with step("generating the mixed en→fr corpus (74,000 pairs)"):
        ...

writes to stderr, outside a terminal::

    generating the mixed en→fr corpus (74,000 pairs) …
      done in 5.8 s
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

import keras

_CLEAR = "\r\x1b[K"  # back to the start of the line, erase it
_live_steps: list[_Step] = []  # the steps showing a live line, innermost last
_lock = threading.Lock()


def is_terminal(stream) -> bool:
    """Whether `stream` is an interactive terminal (live lines make sense)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _seconds(value: float) -> str:
    return (
        f"{value:.1f} s" if value < 60 else f"{value // 60:.0f} min {value % 60:.0f} s"
    )


class _Step:
    """The live line of one step on a terminal, redrawn every second."""

    def __init__(self, message, stream):
        self.message, self.stream = message, stream
        self.start = time.perf_counter()
        self.interrupted = False  # an inner step took the line over
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def begin(self):
        with _lock:
            if _live_steps:  # keep the outer step's line, start a new one
                _live_steps[-1].interrupted = True
                self.stream.write("\n")
            _live_steps.append(self)
            self._draw()
        self._ticker.start()

    def _draw(self):
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"{_CLEAR}{self.message} … {elapsed:.0f} s")
        self.stream.flush()

    def _tick(self):
        while not self._stop.wait(1.0):
            with _lock:
                if _live_steps and _live_steps[-1] is self and not self.interrupted:
                    self._draw()

    def end(self, outcome):
        self._stop.set()
        self._ticker.join()
        with _lock:
            _live_steps.remove(self)
            if self.interrupted:
                self.stream.write(f"{self.message} … {outcome}\n")
            else:
                self.stream.write(f"{_CLEAR}{self.message} … {outcome}\n")
            self.stream.flush()


@contextlib.contextmanager
def step(message: str, stream=None):
    """Announce a long step on `stream` (default stderr) and say how long it took.

    Args:
        message: what happens, e.g. `"training the WordPiece tokenizers"`.
        stream: a text stream. Defaults to `sys.stderr` at the time of the
            call.

    If the block raises, the step ends with "failed after N s" and the
    exception goes on.
    """
    stream = sys.stderr if stream is None else stream
    start = time.perf_counter()
    live = _Step(message, stream) if is_terminal(stream) else None
    if live is not None:
        live.begin()
    else:
        print(f"{message} …", file=stream, flush=True)

    def finish(outcome):
        if live is not None:
            live.end(outcome)
        else:
            print(f"  {outcome}", file=stream, flush=True)

    try:
        yield
    except BaseException:
        finish(f"failed after {_seconds(time.perf_counter() - start)}")
        raise
    finish(f"done in {_seconds(time.perf_counter() - start)}")


class TrainingProgress(keras.callbacks.Callback):
    """A live line of the current epoch's steps on a terminal; nothing elsewhere.

    `fit(verbose=2)` already writes one line per epoch, which is what a log
    wants; on a terminal this adds, while an epoch runs, a line such as
    `epoch 2/20  step 61/125  ██████░░░░░░  loss 1.234` that is erased before
    anything else is printed (validation, the epoch's line).

    Args:
        stream: a text stream. Defaults to `sys.stderr`.
        min_interval: seconds between two redraws.
    """

    def __init__(self, stream=None, min_interval=0.2):
        super().__init__()
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = min_interval
        self.live = is_terminal(self.stream)
        self._epoch = 0
        self._drawn = False
        self._last_draw = 0.0

    def _write(self, text):
        self.stream.write(f"{_CLEAR}{text}")
        self.stream.flush()
        self._drawn = True
        self._last_draw = time.perf_counter()

    def _clear(self, *args, **kwargs):
        if self._drawn:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._drawn = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not self.live:
            return
        steps = self.params.get("steps") or 0
        if steps and batch + 1 >= steps:  # the epoch's line comes next
            self._clear()
            return
        if time.perf_counter() - self._last_draw < self.min_interval:
            return
        epochs = self.params.get("epochs") or 0
        text = f"epoch {self._epoch + 1}/{epochs}  step {batch + 1}"
        if steps:
            filled = round(20 * (batch + 1) / steps)
            text += f"/{steps}  {'█' * filled}{'░' * (20 - filled)}"
        loss = (logs or {}).get("loss")
        if loss is not None:
            text += f"  loss {float(loss):.3f}"
        self._write(text)

    def on_test_batch_end(self, batch, logs=None):
        if self.live and time.perf_counter() - self._last_draw >= self.min_interval:
            self._write(f"epoch {self._epoch + 1}: validating, batch {batch + 1}")

    on_test_end = on_epoch_end = on_train_end = _clear


__all__ = ["TrainingProgress", "is_terminal", "step"]
