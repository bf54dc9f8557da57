"""Regenerate the two data files the example networks read (run once; both are shipped).

- ``python_docs.txt``: whole topics of the Python Language Reference as shipped in
  CPython's ``pydoc_data/topics.py`` (the text ``help("assert")`` prints), in sorted
  topic order, until the file holds at least 200,000 bytes. Read from the Python that
  runs this script (the shipped file came from CPython 3.11.7).
- ``digits.npz``: the UCI "Optical Recognition of Handwritten Digits" test set (1797
  8×8 images, pixel counts 0..16) as scikit-learn ships it in
  ``sklearn/datasets/data/digits.csv.gz``; ``images`` uint8 (1797, 8, 8), ``labels``
  uint8 (1797,). Pass the path of that file (scikit-learn need not be installed: it is
  inside the scikit-learn wheel, ``pip download scikit-learn --no-deps`` and unzip)::

      python examples/data/make_data.py path/to/digits.csv.gz
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXT_BYTES = 200_000


def make_text() -> Path:
    from pydoc_data.topics import topics

    parts, size = [], 0
    for key in sorted(topics):
        parts.append(topics[key].strip("\n"))
        size += len(parts[-1].encode("utf-8")) + 2
        if size >= TEXT_BYTES:
            break
    out = HERE / "python_docs.txt"
    out.write_bytes(("\n\n".join(parts) + "\n").encode("utf-8"))
    return out


def make_digits(csv_gz: Path) -> Path:
    with gzip.open(csv_gz, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    images = table[:, :64].reshape(-1, 8, 8)
    labels = table[:, 64]
    assert images.min() >= 0 and images.max() <= 16 and set(labels) == set(range(10))
    out = HERE / "digits.npz"
    np.savez_compressed(out, images=images.astype(np.uint8), labels=labels.astype(np.uint8))
    return out


if __name__ == "__main__":
    print(make_text())
    if len(sys.argv) > 1:
        print(make_digits(Path(sys.argv[1])))
