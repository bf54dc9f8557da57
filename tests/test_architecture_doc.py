"""docs/architecture.md names every module of hesscli/, and every module it names exists.

The convention the doc follows (so this can be read mechanically): a module is named
by its file in backticks.

- In the layer table's *package* column, files and folders are written from the
  repository's root (`` `hesscli/api.py` ``, `` `hesscli/spectra/` ``); a folder names
  its package's ``__init__.py``.
- In the table's *holds* column, a bare file name (`` `trace.py` ``) is a module of
  one of the folders in that row's *package* column, or one of its files.
- Anywhere else, a file is written from ``hesscli/`` (`` `spectra/trace.py` ``,
  `` `cli/train_run.py` ``, `` `api.py` ``) or, when it starts with a folder of the
  repository's root, from there (`` `hesscli/api.py` ``, `` `problems/rosenbrock.py` ``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hesscli"
DOC = ROOT / "docs" / "architecture.md"
FILE = re.compile(r"`([\w./]+\.py)`")


def table_rows() -> list[list[str]]:
    """The cells of the layer table of docs/architecture.md, top row first (header skipped)."""
    text = DOC.read_text(encoding="utf-8")
    lines = text.split("\n## Layers\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| layer |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def named() -> tuple[set[Path], list[str]]:
    """The files the doc names, and the names that resolve to no file (or to several)."""
    files: set[Path] = set()
    unresolved: list[str] = []
    rows = table_rows()
    for row in rows:
        packages, modules = [], []
        for token in re.findall(r"`([^`]+)`", row[1]):
            path = ROOT / token.rstrip("/")
            if token.endswith("/"):
                packages.append(path)
                path = path / "__init__.py"
            else:
                modules.append(path)
            if path.is_file():
                files.add(path)
            else:
                unresolved.append(f"{token} (package column of {row[0]!r})")
        for token in FILE.findall(row[2]):
            if "/" in token:
                continue  # a path, read below with the rest of the text
            found = [pkg / token for pkg in packages if (pkg / token).is_file()] + [
                m for m in modules if m.name == token]
            if len(found) == 1:
                files.add(found[0])
            else:
                unresolved.append(f"{token} (row {row[0]!r}: {len(found)} files of that name)")
    text = DOC.read_text(encoding="utf-8")
    table = {line for line in text.splitlines() if line.startswith("|")}
    rest = "\n".join(line for line in text.splitlines() if line not in table)
    for token in FILE.findall(rest) + [t for line in table for t in FILE.findall(line)
                                       if "/" in t]:
        # from the root when it starts with one of the root's folders, else from hesscli/
        first = token.split("/")[0]
        path = ROOT / token if "/" in token and (ROOT / first).is_dir() else PACKAGE / token
        if path.is_file():
            files.add(path)
        else:
            unresolved.append(token)
    return files, unresolved


def test_every_module_the_doc_names_exists():
    _, unresolved = named()
    assert unresolved == []


def test_every_module_is_named_in_the_doc():
    files, _ = named()
    modules = set(PACKAGE.rglob("*.py"))
    unnamed = sorted(str(m.relative_to(PACKAGE)) for m in modules - files)
    assert unnamed == []


def test_the_doc_names_the_modules_issue_20_found_unnamed():
    files, _ = named()
    for name in ("spectra/trace.py", "spectra/restarted.py", "spectra/blocks.py",
                 "progress.py", "cli/train_run.py"):
        assert PACKAGE / name in files, name
