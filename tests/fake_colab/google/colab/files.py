import os
import shutil
from pathlib import Path


def upload():
    uploaded = {}
    for path in filter(None, os.environ.get("FAKE_COLAB_UPLOAD", "").split(os.pathsep)):
        shutil.copy(path, Path.cwd() / Path(path).name)
        uploaded[Path(path).name] = Path(path).read_bytes()
    print(f"(fake upload: {sorted(uploaded)})")
    return uploaded
