"""Imports go one way: the layers of docs/architecture.md, and no circles.

The contracts are import-linter's, declared in pyproject.toml (``[tool.importlinter]``;
``lint-imports`` runs them from the command line too). import-linter reads the import
graph with grimp, which records every import statement, the ones inside functions as
well: a function-local import of an upper layer is an arrow up like any other
(:func:`test_the_graph_holds_the_imports_inside_functions` checks that it is seen).
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest

importlinter = pytest.importorskip("importlinter", minversion="2.6")
grimp = pytest.importorskip("grimp")

from importlinter.application.use_cases import read_user_options  # noqa: E402
from importlinter.configuration import configure  # noqa: E402
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract  # noqa: E402
from importlinter.contracts.layers import LayersContract  # noqa: E402

from tests.test_architecture_doc import table_rows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE = ROOT / "hesscli"
KINDS = {"layers": LayersContract, "acyclic_siblings": AcyclicSiblingsContract}


@pytest.fixture(scope="module")
def graph():
    import hesscli

    # the graph must be of the code these tests sit beside, not of another checkout
    assert Path(hesscli.__file__).resolve().parent == PACKAGE, hesscli.__file__
    return grimp.build_graph("hesscli", include_external_packages=False)


@pytest.fixture(scope="module")
def options():
    configure()  # what lint-imports does first: the readers of its configuration files
    return read_user_options(str(PYPROJECT))


@pytest.fixture(scope="module")
def contracts(options):
    found = {}
    for raw in options.contracts_options:
        cls = KINDS[raw["type"]]
        found[raw["id"]] = cls(name=raw["name"], session_options=options.session_options,
                               contract_options=raw)
    assert set(found) == {"layers", "no-circles"}
    return found


def broken(contract, graph) -> str:
    """Why ``contract`` is broken on ``graph`` ("" when it is kept)."""
    check = contract.check(copy.deepcopy(graph), verbose=False)
    if check.kept:
        return ""
    meta = check.metadata
    if "invalid_dependencies" in meta:  # layers: each chain from a lower layer up
        lines = [f"not in any layer: {sorted(meta['undeclared_modules'])}"
                 ] if meta["undeclared_modules"] else []
        for dep in meta["invalid_dependencies"]:
            for route in dep["routes"]:
                links = [*route["chain"], *route["extra_firsts"], *route["extra_lasts"]]
                lines.append(f"{dep['importer']} imports {dep['imported']}: " + "; ".join(
                    f"{link['importer']} -> {link['imported']} "
                    f"(l.{','.join(str(n) for n in link['line_numbers'])})" for link in links))
        return "\n".join(lines)
    return f"imports that would break the circles: {meta['cycle_breakers_by_package']}"


def test_imports_go_one_way(graph, contracts):
    assert broken(contracts["layers"], graph) == ""


def test_no_circles(graph, contracts):
    assert broken(contracts["no-circles"], graph) == ""


def test_an_upward_import_breaks_the_layers(graph, contracts):
    """The contract can fail: one import of the CLI from the bottom layer breaks it, and so
    does each arrow up this contract was written against, put back."""
    for importer, imported in [("hesscli.vocab", "hesscli.cli.outcome"),
                               ("hesscli.documents.gradcheck", "hesscli.render.numbers"),
                               ("hesscli.checks.run", "hesscli.api"),
                               ("hesscli.analysis.preconditioned", "hesscli.training.runlog")]:
        g = copy.deepcopy(graph)
        g.add_import(importer=importer, imported=imported, line_number=1,
                     line_contents=f"import {imported}")
        why = broken(contracts["layers"], g)
        assert f"{importer} -> {imported}" in why, (importer, imported, why)


def test_a_circle_breaks_the_acyclic_contract(graph, contracts):
    """The circles this contract was written against, put back one at a time (the
    fisher <-> ggn one is now fisher <-> operators: operators.py holds the operator
    backend that ggn.py held then)."""
    for importer, imported in [("hesscli.curvature.fisher", "hesscli.curvature.operators"),
                               ("hesscli.objective.checkpoints", "hesscli.objective.points"),
                               ("hesscli.training.loop", "hesscli.training.run")]:
        assert graph.find_shortest_chain(importer=imported, imported=importer), (imported,
                                                                                 importer)
        g = copy.deepcopy(graph)
        g.add_import(importer=importer, imported=imported, line_number=1,
                     line_contents=f"import {imported}")
        assert broken(contracts["no-circles"], g), (importer, imported)


def _local_imports() -> set[tuple[str, str, tuple[str, ...]]]:
    """(importer, imported, names) of every ``from hesscli... import`` inside a function,
    read from the source with ``ast`` (independently of grimp)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (
                        node.module or "").startswith("hesscli"):
                    found.add((module, node.module, tuple(a.name for a in node.names)))
    return found


def test_the_graph_holds_the_imports_inside_functions(graph):
    local = _local_imports()
    assert len(local) > 100  # api.py alone imports inside most of its functions
    # ``from hesscli import api`` is an import of hesscli.api (a submodule), others of the module
    missing = {(a, b) for a, b, names in local
               if not graph.direct_import_exists(importer=a, imported=b)
               and not all(graph.direct_import_exists(importer=a, imported=f"{b}.{name}")
                           for name in names)}
    assert not missing, sorted(missing)
    # the arrow up that the layers contract allows by name is one of them
    assert ("hesscli.api", "hesscli.render.views") in {(a, b) for a, b, _ in local}


# ---- the contract and docs/architecture.md say the same ------------------------------

def doc_layers() -> list[set[str]]:
    """The table's package column, top to bottom, as sets of top-level names of
    ``hesscli`` (``hesscli/cli/`` -> ``cli``, ``hesscli/api.py`` -> ``api``)."""
    layers = []
    for row in table_rows():
        names = re.findall(r"`hesscli/([^`/]+)/?`", row[1])
        assert names, row
        layers.append({Path(name).stem for name in names})
    return layers


def test_the_contract_mirrors_the_architecture_table(options):
    (layers,) = [c for c in options.contracts_options if c["id"] == "layers"]
    declared = [{name.strip() for name in re.split(r"[:|]", layer)} for layer in layers["layers"]]
    assert declared == doc_layers()
