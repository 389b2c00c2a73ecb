"""Shared pytest set-up: quiet TensorFlow, deterministic seeds, no network."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Classes that pass their checks are saved in a workbook (course.workbook):
# a fresh folder per test process, never the user's home.
os.environ.setdefault("TF_TRANSFORMER_WORKBOOK", tempfile.mkdtemp(prefix="workbook-"))

import socket  # noqa: E402

# Crafted notebooks for the grader tests are data, not tests to run.
collect_ignore_glob = ["fixtures/*"]

import pytest  # noqa: E402


class NetworkAccessError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never reach the network: any outbound connection fails loudly."""

    def guarded_connect(self, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (
            host.startswith("127.") or host in ("localhost", "::1")
        ):
            return real_connect(self, address, *args, **kwargs)
        if self.family == socket.AF_UNIX:
            return real_connect(self, address, *args, **kwargs)
        raise NetworkAccessError(f"tests may not reach the network: {address!r}")

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield


@pytest.fixture(autouse=True)
def _seed_and_policy():
    """Each test starts from the same seed and the float32 dtype policy."""
    import keras

    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def data_dir():
    """The run's shared TFDS data directory (see the repository's conftest.py):
    each generated corpus is prepared once for all test modules and workers."""
    return os.environ["TFDS_DATA_DIR"]
