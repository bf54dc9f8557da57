"""The tour cannot go stale: every tour command is run and its output compared.

The tour blocks are docs/tour.md's and README.md's (``<!-- tour: CMD -->`` + a
console block, see ``tools/tour.py``). Commands run
in-process at 80 columns without color, as ``make docs`` runs them, in a
temporary directory (so ``--plot docs/...`` does not touch the repository).
Outputs are compared modulo timings, versions and temporary paths.

This says the tour is current, not that it is right (``make docs`` can always make it
current): tests/test_tour_facts.py checks the committed numbers against analytic ones.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tour():
    spec = importlib.util.spec_from_file_location("hesscli_tour", ROOT / "tools" / "tour.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tour = load_tour()


TOURS = [path for path in (ROOT / "docs" / "tour.md", ROOT / "README.md") if path.is_file()]
SOURCES = [(path, block) for path in TOURS
           for block in tour.blocks(path.read_text(encoding="utf-8"))]


def test_there_is_a_tour():
    assert any(path.name == "tour.md" for path, _ in SOURCES), "no tour blocks in docs/tour.md"


@pytest.mark.parametrize("source", SOURCES, ids=[b.command for _, b in SOURCES])
def test_tour_output_is_current(source, tmp_path, monkeypatch):
    TOUR, block = source
    if block.slow and not os.environ.get("HESSCLI_SLOW_TOUR"):
        pytest.skip("a slow tour block (a real network): HESSCLI_SLOW_TOUR=1 compares it")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(block.command)
    for flag, value in zip(args, args[1:], strict=False):
        if flag in ("--plot", "--save-escape", "-o", "--output"):
            (tmp_path / value).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # tour commands use examples/
    code, output = tour.run_inprocess(block.command)
    expected, actual = tour.normalize(block.output), tour.normalize(tour.shown(code, output))
    if expected != actual:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), "in the tour", "printed now"))
        pytest.fail(f"{TOUR.name}: the output of '{block.command}' is stale; run "
                    f"'make docs' to regenerate it:\n{diff}")


SAMPLE = """intro
<!-- tour: hesscli one -->
```console
$ hesscli one
old output
```
<!-- /tour -->
middle
<!-- tour: hesscli two --x -->
```console
$ hesscli two --x
```
<!-- /tour -->
end
"""


def test_blocks_are_parsed_and_rewritten_in_place(tmp_path):
    found = tour.blocks(SAMPLE)
    assert [b.command for b in found] == ["hesscli one", "hesscli two --x"]
    assert found[0].output == "old output\n" and found[1].output == ""
    path = tmp_path / "t.md"
    path.write_text(SAMPLE)
    outputs = {"hesscli one": "new   \nlines\n\n", "hesscli two --x": "done in 0.52 s\n"}
    stale = tour.process(path, lambda cmd: (0, outputs[cmd]), check=False)
    assert stale == ["hesscli one", "hesscli two --x"]
    text = path.read_text()
    assert "$ hesscli one\nnew\nlines\n```" in text  # trailing blanks stripped
    assert text.startswith("intro\n") and text.endswith("end\n") and "middle" in text
    # a second run with other timings is current; --check rewrites nothing
    outputs["hesscli two --x"] = "done in 1.7 s\n"
    assert tour.process(path, lambda cmd: (0, outputs[cmd]), check=True) == []
    outputs["hesscli one"] = "changed\n"
    assert tour.process(path, lambda cmd: (0, outputs[cmd]), check=True) == ["hesscli one"]
    assert "$ hesscli one\nnew\nlines\n" in path.read_text()


def test_normalize_ignores_timings_versions_and_temporary_paths():
    a = "took 0.52 s (12 ms each), hesscli 0.1.0, wrote /tmp/pytest-1/x.png\nλ = 0.52\n"
    b = "took 3.1 s (9 ms each), hesscli 0.2.0, wrote /tmp/pytest-7/x.png\nλ = 0.52\n"
    assert tour.normalize(a) == tour.normalize(b)
    assert tour.normalize("λ = 0.52\n") != tour.normalize("λ = 0.53\n")
