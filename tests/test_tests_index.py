"""tests/README.md indexes every test file by behaviour, and names no file that does not exist.

A test file is named in the index by its file name in backticks on a list line
(``- `test_kinks.py`: ...``); each is listed once.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent
INDEX = TESTS / "README.md"


def listed() -> list[str]:
    lines = INDEX.read_text(encoding="utf-8").splitlines()
    return [m.group(1) for line in lines if (m := re.match(r"- `(test_\w+\.py)`", line))]


def test_every_test_file_is_in_the_index():
    files = {path.name for path in TESTS.glob("test_*.py")}
    missing = sorted(files - set(listed()))
    assert missing == [], f"add a line for each to tests/README.md: {missing}"


def test_every_indexed_file_exists_and_is_listed_once():
    names = listed()
    assert len(names) > 40  # the index was read at all
    assert sorted(n for n in names if not (TESTS / n).is_file()) == []
    assert [n for n, count in Counter(names).items() if count > 1] == []


def test_every_index_line_says_what_it_tests():
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        if re.match(r"- `test_\w+\.py`", line):
            assert re.match(r"- `test_\w+\.py`: \S.{20,}", line), line
