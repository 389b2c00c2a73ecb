"""The machine line that every benchmark report starts with (bench/machine.py)."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

PATH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "machine.py"


@pytest.fixture(scope="module")
def machine():
    spec = importlib.util.spec_from_file_location("bench_machine", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 sse4_2 avx fma avx2 bmi2

processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 sse4_2 avx fma avx2 bmi2
"""

INTEL = """processor\t: 0
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu sse4_2 avx avx2 avx512f avx512bw
"""

ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes crc32
"""


def test_cpu_model_names_the_processor_and_its_widest_vector_unit(machine):
    assert machine.cpu_model(AMD) == "AMD EPYC (AVX2)"
    assert machine.cpu_model(INTEL) == "Intel(R) Xeon(R) CPU @ 2.20GHz (AVX512F)"


def test_cpu_model_without_a_model_name_falls_back_to_the_platform(
    machine, monkeypatch
):
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    monkeypatch.setattr(machine.platform, "machine", lambda: "aarch64")
    assert machine.cpu_model(ARM) == "aarch64 (ASIMD)"
    assert machine.cpu_model("") == "aarch64"


def test_header_has_date_processor_and_core_count(machine):
    line = machine.header()
    assert line.startswith("date: 20")
    assert f"{machine.os.cpu_count()} CPU cores" in line
    assert machine.platform.machine() in line


def test_before_tensorflow_is_imported_onednn_reports_the_request(machine, monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert machine.onednn() == "TF_ENABLE_ONEDNN_OPTS=1"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert machine.onednn() == "TF_ENABLE_ONEDNN_OPTS=unset"


@pytest.mark.slow
@pytest.mark.parametrize("setting, shown", [("1", "oneDNN on"), ("0", "oneDNN off")])
def test_after_tensorflow_is_imported_onednn_reports_what_it_runs(setting, shown):
    code = (
        f"import sys; sys.path.insert(0, {str(PATH.parent)!r}); "
        "import tensorflow, machine; print(machine.header())"
    )
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith(shown), result.stdout
