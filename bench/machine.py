"""The first line of every benchmark report: date and machine.

Ratios against the peer depend on the processor, not only on its core count,
and on whether TensorFlow runs its oneDNN kernels (TensorFlow turns them on
by default only on some processors; `TF_ENABLE_ONEDNN_OPTS=1` or `=0`
decides). See the train-step figures in docs/benchmarks.md. So every report names the
processor model, its widest vector instructions and the oneDNN setting.
"""

import datetime
import os
import platform
import sys

VECTOR_FLAGS = ("avx512f", "avx2", "avx", "sse4_2", "asimd", "neon")


def cpu_model(cpuinfo):
    """'<model name> (<widest vector flag>)' from the text of /proc/cpuinfo.

    Returns `platform.processor()` or `platform.machine()` when the text names
    no model (not Linux, or an ARM kernel that lists none).
    """
    model, flags = None, set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    model = model or platform.processor() or platform.machine()
    widest = next((flag for flag in VECTOR_FLAGS if flag in flags), None)
    return f"{model} ({widest.upper()})" if widest else model


def onednn():
    """'oneDNN on' / 'oneDNN off' once TensorFlow is imported, else what
    `TF_ENABLE_ONEDNN_OPTS` asks for ('unset': TensorFlow's default for the CPU).
    """
    if "tensorflow" in sys.modules:
        try:
            from tensorflow.python.util import _pywrap_util_port

            return "oneDNN on" if _pywrap_util_port.IsMklEnabled() else "oneDNN off"
        except (ImportError, AttributeError):  # a TensorFlow without the query
            pass
    return f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}"


def header():
    """'date: YYYY-MM-DD  machine: x86_64, <CPU model> (<ISA>), N CPU cores,
    oneDNN on|off'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            cpuinfo = file.read()
    except OSError:
        cpuinfo = ""
    return (
        f"date: {datetime.date.today()}  machine: {platform.machine()}, "
        f"{cpu_model(cpuinfo)}, {os.cpu_count()} CPU cores, {onednn()}"
    )
