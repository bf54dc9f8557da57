"""Point files given to ``--at`` that cannot be read safely are refused before reading.

Special files are real (``os.mkfifo``, symlinks to ``/dev/zero``); a ``.npy`` header
that declares terabytes is refused before allocating; deeply nested JSON is an input
error, not a RecursionError. (Malformed point files of every format:
tests/test_hostile_exit_codes.py; round trips: tests/test_roundtrip_points.py.)
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.helpers import one_error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_point_from_special_files_is_refused_at_once(hess, quadratic, tmp_path):
    fifo = tmp_path / "point.json"
    os.mkfifo(fifo)  # reading it would block forever
    one_error(hess("analyze", quadratic, "--at", fifo), 2, "FIFO")
    zero = tmp_path / "zero.npy"
    zero.symlink_to("/dev/zero")  # reading it would never end
    one_error(hess("analyze", quadratic, "--at", zero), 2, "character device")
    checkpoint = tmp_path / "zero.safetensors"  # checkpoint formats are guarded too
    checkpoint.symlink_to("/dev/zero")
    one_error(hess("analyze", quadratic, "--at", checkpoint), 2, "character device")
    one_error(hess("analyze", quadratic, "--at", tmp_path), 2)
    big = tmp_path / "big.txt"
    big.write_text("1.0\n" * 400_000)  # 1.6 MB of numbers for a 2-parameter objective
    one_error(hess("analyze", quadratic, "--at", big), 2, "more than")


def test_npy_header_declaring_terabytes_is_refused_before_allocating(hess, quadratic,
                                                                   tmp_path):
    import io
    import zipfile

    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (999999999999,), }"
    pad = 64 - (10 + len(header) + 1) % 64
    lie = (b"\x93NUMPY\x01\x00" + (len(header) + pad + 1).to_bytes(2, "little") + header
           + b" " * pad + b"\n" + bytes(16))
    assert np.lib.format.read_magic(io.BytesIO(lie)) == (1, 0)
    npy = tmp_path / "lie.npy"
    npy.write_bytes(lie)
    one_error(hess("analyze", quadratic, "--at", npy), 2, "declares an array of shape")
    npz = tmp_path / "lie.npz"
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("x.npy", lie)
    one_error(hess("analyze", quadratic, "--at", npz), 2, "declares an array of shape")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"a": ' * 50_000 + "1" + "}" * 50_000])
def test_deeply_nested_point_files(hess, quadratic, tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    one_error(hess("analyze", quadratic, "--at", path), 2)

