"""A stand-in for Colab's `google.colab` in the Colab setup tests.

`files.upload()` "uploads" the files listed in `FAKE_COLAB_UPLOAD` (paths
separated by os.pathsep; none: the student cancelled) into the working
folder, as Colab does. `drive.mount(mountpoint)` links `mountpoint/MyDrive`
to the folder `FAKE_COLAB_DRIVE`; unset, it fails as a declined mount does.
"""

from google.colab import drive, files  # noqa: F401
