"""Reading and validating a ``checks.yaml`` spec (the one module that imports yaml).

A spec is a mapping with ``checks:``, a list of checks, and optional
``version: 1`` and ``defaults:`` (options applied to every check unless it sets
them). A check::

    - name: svm minimum is well conditioned     # optional
      objective: svm                            # file.py, file.py:name or a built-in
      at: zeros                                 # POINT, or a list of numbers
      params: {lam: 0.1}                        # the -p parameters
      method: auto                              # auto | exact | fd
      dtype: float64                            # float64 | float32
      seed: 0
      lr: 0.01                                  # for step.increases_loss, stability
      expect:                                   # at least one (keys: checks.registry)
        classification: local_minimum
        lambda_min: {min: 0.1}
        inertia.negative: 0

Paths in a spec (a ``.py`` objective, an ``at:`` or ``around:`` file) are
relative to the spec file's folder, not to the directory ``hesscli check`` runs
in, so a spec works from anywhere (a CI job's root, ``make``, an IDE).

The file is parsed with ``yaml.safe_load`` only: tags such as
``!!python/object/apply`` are refused, never executed. Validation is strict:
an unknown key is an error naming its path and the closest valid key, a wrong
type names its path, expected and found types. Every error is an
:class:`InputError` (exit 2) and nothing is run before the whole spec is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hesscli.checks.registry import (
    ANALYSES,
    document_expectation,
    integer,
    mapping,
    number,
    point,
    type_name,
)
from hesscli.errors import InputError
from hesscli.expect import Expectation
from hesscli.vocab import Dtype, MethodRequest, words

TOP_KEYS = ("version", "defaults", "checks")
OPTION_KEYS = ("at", "params", "method", "dtype", "seed", "lr", "gtol", "tol")
CHECK_KEYS = ("name", "objective", "expect") + OPTION_KEYS
METHODS = words(MethodRequest)
DTYPES = words(Dtype)
SPEC_LIMIT = 16 * 2**20  # a spec is a page of YAML; anything this large is another file


@dataclass(frozen=True)
class Expected:
    """One ``expect:`` entry: a document expectation, or another analysis to run.

    ``analysis`` names an entry of :data:`~hesscli.checks.registry.ANALYSES` (None:
    ``expectation`` is on the analyze document); ``value`` is that analysis's
    parsed value (its options).
    """

    key: str  # as written in the spec
    path: str  # where in the spec (for messages)
    expectation: Expectation | None = None
    analysis: str | None = None
    value: Any = None


@dataclass(frozen=True)
class CheckSpec:
    name: str
    objective: str
    at: str | None
    params: tuple[str, ...]  # KEY=VALUE, as -p takes them
    method: str
    dtype: str
    seed: int
    lr: float
    gtol: float | None
    tol: float | None
    expectations: tuple[Expected, ...]


@dataclass(frozen=True)
class Spec:
    path: str
    checks: tuple[CheckSpec, ...]


def read_spec(path: str | Path) -> Spec:
    """Load and validate the spec at ``path``."""
    import yaml

    from hesscli.files import read_regular

    path = Path(path)
    data = read_regular(path, "spec file", SPEC_LIMIT)  # never a FIFO or a device
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read spec {str(path)!r}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_unique_keys_loader())  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "python/" in str(exc):
            problem = ("Python object tags (!!python/...) are not allowed; a spec holds "
                       "plain data only")
        raise InputError(f"{path.name}{where}: invalid YAML: {problem}") from None
    return parse_spec(data, str(path), base=path.parent)


MAX_NODES = 2_000_000  # values in the spec with every alias expanded (60 000 checks: ~10⁶)
MAX_DEPTH = 64  # nesting: a spec's deepest legitimate value is a few levels


def bounded(data: Any, label: str) -> None:
    """Refuse a spec whose aliases expand beyond :data:`MAX_NODES` values or nest beyond
    :data:`MAX_DEPTH`, or that refers to itself, before anything walks it.

    YAML aliases share one object, so ``yaml.load`` of an alias bomb (each level a
    list of nine aliases of the one before) is small, but anything that visits
    the values (validation, a message naming a value) pays the expanded size:
    nine levels were 9⁹ values, a 358 MB error line. The count is memoized on
    object identity, so this walk is linear in the distinct objects.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(obj: Any, depth: int) -> int:
        if not isinstance(obj, (list, dict)):
            return 1
        key = id(obj)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise InputError(f"{label}: values nested deeper than {MAX_DEPTH} levels; a spec "
                             "is a list of checks with a few levels of options")
        if key in active:
            raise InputError(f"{label}: a YAML alias refers to a value that contains it "
                             "(a recursive structure); a spec holds plain data")
        active.add(key)
        children = obj.values() if isinstance(obj, dict) else obj
        total = 1 + (len(obj) if isinstance(obj, dict) else 0)  # the keys count too
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise InputError(
                    f"{label}: with its YAML aliases expanded the spec holds more than "
                    f"{MAX_NODES} values (an alias bomb?); write the values out, or split "
                    "the spec")
        active.discard(key)
        sizes[key] = total
        return total

    size(data, 0)


def _unique_keys_loader() -> Any:
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    Plain YAML lets the last one win silently, so ``expect:`` written twice
    would drop the first set of expectations without a word.
    """
    import yaml

    # libyaml's parser when PyYAML has it: the pure-Python one took ~10 ms per check
    # (60 000 checks: minutes before the first message); the constructor is the same
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:
                    continue  # let the base class report an unhashable key
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def check_files(checks: Any, label: str, base: Path | None = None) -> None:
    """Every check's objective and point file must exist before the first check runs.

    ``checks`` are parsed :class:`CheckSpec` values, or the raw mappings (then
    ``base`` resolves their relative paths; what is not a string is left to the
    validation). Each distinct path is looked up once.
    """
    from hesscli.objective.files import resolve_path
    from hesscli.objective.points import FILE_SUFFIXES

    seen: set[str] = set()
    for i, check in enumerate(checks):
        if isinstance(check, CheckSpec):
            objective, at = check.objective, check.at
        elif isinstance(check, dict):
            objective, at = check.get("objective"), check.get("at")
            objective = beside(base, objective) if isinstance(objective, str) else None
            at = beside(base, at) if isinstance(at, str) and at else None
        else:
            continue
        if objective and objective not in seen:
            try:
                resolve_path(objective)
            except InputError as exc:
                raise InputError(f"checks[{i}].objective: {exc}") from None
            seen.add(objective)
        if at is not None and at not in seen:
            if Path(at).suffix.lower() in FILE_SUFFIXES and not Path(at).is_file():
                raise InputError(f"checks[{i}].at: point file {at!r} does not exist")
            seen.add(at)


LITERAL_POINTS = ("zeros", "random")


def beside(base: Path | None, text: str) -> str:
    """A relative file path in the spec, resolved against the spec's folder ``base``.

    Built-in problem names, ``zeros``/``random`` and literal numbers are left
    as they are; a ``::`` sub-tree selector and a ``:name`` after ``.py`` stay
    attached to the path.
    """
    if base is None or not text or text in LITERAL_POINTS:
        return text
    try:
        [float(v) for v in text.split(",")]
        return text  # a literal point "1,2.5,-3"
    except ValueError:
        pass
    path, sep, rest = text.partition("::")
    if not sep and ".py:" in path:
        path, name = path.rsplit(":", 1)
        rest, sep = name, ":"
    if Path(path).is_absolute() or not (
        path.endswith(".py") or "/" in path or "." in Path(path).name
        or (base / path).exists()
    ):
        return text  # a built-in problem's name
    return str(base / path) + sep + rest


def parse_spec(data: Any, label: str = "spec", base: Path | None = None) -> Spec:
    """Validate already-loaded data (see the module docstring for the format)."""
    bounded(data, Path(label).name)
    if not isinstance(data, dict):
        raise InputError(f"{label}: expected a mapping with a 'checks:' list, got "
                         f"{type_name(data)}")
    mapping(data, "(top level)", TOP_KEYS)
    if "version" in data and data["version"] != 1:
        raise InputError(f"version: this hesscli reads spec version 1, got {data['version']!r}")
    defaults = data.get("defaults") or {}
    mapping(defaults, "defaults", OPTION_KEYS)
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks:
        raise InputError(f"checks: expected a non-empty list of checks, got "
                         f"{type_name(checks)}")
    check_files(checks, label, base)  # a missing file is said before validating the rest
    parsed = tuple(parse_check(c, f"checks[{i}]", defaults, base)
                   for i, c in enumerate(checks))
    from collections import Counter

    counts = Counter(c.name for c in parsed)  # linear: 60 000 checks took 55 s with count()
    dupes = sorted(n for n, times in counts.items() if times > 1)
    if dupes:
        raise InputError(f"checks: duplicate name {dupes[0]!r}; names must be unique")
    check_files(parsed, label)
    return Spec(label, parsed)


def parse_check(
    raw: Any, path: str, defaults: dict[str, Any], base: Path | None = None,
) -> CheckSpec:
    """One check; ``base`` is the spec's folder (relative paths are resolved there)."""
    mapping(raw, path, CHECK_KEYS)
    if "objective" not in raw:
        raise InputError(f"{path}: missing 'objective' (a .py file or a built-in problem)")
    objective = raw["objective"]
    if not isinstance(objective, str) or not objective:
        raise InputError(f"{path}.objective: expected a string, got {type_name(objective)}")
    merged = {**defaults, **{k: v for k, v in raw.items() if k in OPTION_KEYS}}
    where = {k: (f"{path}.{k}" if k in raw else f"defaults.{k}") for k in merged}

    at = point(merged["at"], where["at"]) if "at" in merged else None
    params: tuple[str, ...] = ()
    if "params" in merged:
        p = merged["params"]
        if not isinstance(p, dict):
            raise InputError(f"{where['params']}: expected a mapping of parameter: value, got "
                             f"{type_name(p)}")
        for key, value in p.items():
            if not isinstance(value, (int, float, str, bool)) or value is None:
                raise InputError(f"{where['params']}.{key}: expected a number, string or "
                                 f"boolean, got {type_name(value)}")
        params = tuple(f"{k}={v}" for k, v in p.items())
    method = word(merged.get("method", "auto"), where.get("method", ""), METHODS)
    dtype = word(merged.get("dtype", "float64"), where.get("dtype", ""), DTYPES)
    seed = integer(merged["seed"], where["seed"], minimum=0) if "seed" in merged else 0
    lr = number(merged["lr"], where["lr"]) if "lr" in merged else 0.01
    if lr <= 0:
        raise InputError(f"{where['lr']}: must be positive, got {lr:g}")
    gtol = number(merged["gtol"], where["gtol"]) if "gtol" in merged else None
    tol = number(merged["tol"], where["tol"]) if "tol" in merged else None

    if "expect" not in raw:
        raise InputError(f"{path}: missing 'expect' (what must hold: dotted paths of the "
                         "analyze document, as --expect takes them, or convexity/gradcheck)")
    expect = raw["expect"]
    if not isinstance(expect, dict) or not expect:
        raise InputError(f"{path}.expect: expected a non-empty mapping, got "
                         f"{type_name(expect)}")
    expectations = []
    for key, value in expect.items():
        here = f"{path}.expect.{key}"
        if key in ANALYSES:
            parsed = ANALYSES[key].parse(value, here)
            if isinstance(parsed, dict) and isinstance(parsed.get("around"), str):
                parsed = {**parsed, "around": beside(base, parsed["around"])}
            expectations.append(Expected(key, here, analysis=key, value=parsed))
        else:
            expectations.append(Expected(key, here, document_expectation(
                str(key), value, f"{path}.expect")))
    index = path[path.index("[") + 1 : -1]
    name = raw.get("name", f"#{int(index) + 1} {objective}" + (f" at {at}" if at else ""))
    if not isinstance(name, str):
        raise InputError(f"{path}.name: expected a string, got {type_name(name)}")
    return CheckSpec(name, beside(base, objective), beside(base, at) if at else at, params,
                     method, dtype, seed, lr, gtol, tol, tuple(expectations))


def word(value: Any, path: str, choices: tuple[str, ...]) -> str:
    from hesscli.errors import closest

    if not isinstance(value, str) or value not in choices:
        hint = closest(value, list(choices)) if isinstance(value, str) else ""
        raise InputError(f"{path}: expected one of {', '.join(choices)}, got {value!r}{hint}")
    return value
