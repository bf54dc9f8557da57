"""The docs in docs/ cannot go stale: references regenerate equal, examples run, paths exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"hesscli_tool_{name}",
                                                  ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


reference = load_tool("reference")


def test_json_and_checks_references_are_current():
    for name, make in reference.FILES.items():
        path = ROOT / name
        assert path.is_file(), f"{name} is missing; run 'make docs'"
        assert path.read_text(encoding="utf-8") == make(), f"{name} is stale; run 'make docs'"


def test_every_expect_key_in_the_checks_reference_is_accepted():
    """docs/checks.md lists keys; each one parses as an expectation with its value form."""
    from hesscli.checks.registry import document_expectation

    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    samples = {"`true` or `false`": True, "`{min, max}`": {"min": 0},
               "an integer, or `{min, max}`": 0}
    checked = 0
    for key, form in re.findall(r"^\| `([\w.\[\]]+)` \| ([^|]+) \|$", text, re.M):
        form = form.strip()
        value = samples.get(form)
        if value is None and form.startswith("one of"):
            value = re.findall(r"`([^`]+)`", form)[0]
        if value is None:
            continue
        exp = document_expectation(key, value, "expect")
        assert exp.label == key
        checked += 1
    assert checked > 30


def test_the_api_example_runs():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert "hesscli.analyze(" in code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, cwd=ROOT, env={"JAX_PLATFORMS": "cpu", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("saddle_point")


def test_architecture_names_only_modules_that_exist():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`(hesscli/[\w/]+(?:\.py|/))`", text))
    assert len(paths) > 10
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing
    dotted = set(re.findall(r"`((?:cli|api|curvature|spectra|analysis|objective|documents|"
                            r"render|checks|expect)(?:[/.]\w+)+)", text))
    for name in dotted:
        module = name.split(".")[0] if name.startswith(("api.", "expect.")) else name
        parts = module.replace(".", "/").split("/")
        candidates = [ROOT / "hesscli" / "/".join(parts[:i]) for i in range(len(parts), 0, -1)]
        assert any(c.with_suffix(".py").is_file() or c.is_dir() for c in candidates), name


def test_no_file_refers_to_documents_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT,
                           check=True).stdout.split()
    pattern = re.compile(r"DESIGN\.md|STYLE\.md|STYLE habit|\.\./shared|/work/shared")
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".yaml", ".toml", ".json", ".txt", "") or \
                not path.is_file() or name == "tests/test_docs.py":
            continue
        try:
            if pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(name)
        except UnicodeDecodeError:
            continue
    assert not offenders, offenders


def readme_table() -> dict[str, dict[str, bool]]:
    """The README's options table: {command: {column: ticked}}."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- options -->\n(.*?)<!-- /options -->", text, re.S)
    assert block, "README.md has no options table (<!-- options --> ... <!-- /options -->)"
    lines = [line for line in block.group(1).splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    table = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0].strip("`")] = {h: c == "✓" for h, c in zip(header, cells[1:],
                                                                  strict=True)}
    return table


def help_options(text: str) -> set[str]:
    """The option names a --help text lists in its Options section."""
    section = text.split("\nOptions:\n", 1)[1]
    names = set()
    for line in section.splitlines():
        m = re.match(r"\s{2}(-\S.*?)(\s{2,}|$)", line)
        if m:
            names |= set(re.findall(r"--?[A-Za-z][\w-]*", m.group(1)))
    return names


def test_readme_options_table_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reference.readme_with_options(text) == text, "run 'make docs'"


def test_every_command_accepts_the_options_the_readme_says(hess):
    """Read from each command's --help, independently of how the table was made."""
    table = readme_table()
    from hesscli.cli import COMMANDS

    assert set(table) == set(COMMANDS)
    for command, row in table.items():
        shown = help_options(hess(command, "--help").stdout)
        for column, ticked in row.items():
            present = [o in shown for o in reference.OPTION_GROUPS[column]]
            if ticked:
                assert all(present), (command, column, shown)
            else:
                assert not all(present), (command, column)


def test_the_checks_reference_example_holds(tmp_path):
    """The spec shown in docs/checks.md passes as written: svm = 0.1‖w‖² + Σ hinge has
    Hessian 2·0.1·I = 0.2·I off the margins (so λmin ≥ 0.1, no negative eigenvalue), and
    at w = 0 every margin term is active, so ∇f = −Σ yₙxₙ ≠ 0: not a critical point."""
    from click.testing import CliRunner

    from hesscli.cli import cli

    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    (spec,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    path = tmp_path / "checks.yaml"
    path.write_text(spec, encoding="utf-8")
    res = CliRunner().invoke(cli, ["check", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    import json

    (check,) = json.loads(res.stdout)["checks"]
    measured = {r["key"]: r["measured"] for r in check["results"]}
    assert all(r["passed"] for r in check["results"])
    assert measured["classification"] == "not_critical"
    assert measured["inertia.negative"] == 0
    assert abs(measured["lambda_min"] - 2 * 0.1) <= 1e-12  # 2λ, λ = 0.1
    assert measured["convexity"] == "no_violation_found"
