"""Regenerate the outputs of the tour blocks in markdown files (default: docs/tour.md, README.md).

A tour block is a command in an HTML comment followed by a console block::

    <!-- tour: hesscli analyze saddle --at zeros -->
    ```console
    $ hesscli analyze saddle --at zeros
    ...output...
    ```
    <!-- /tour -->

``<!-- tour slow: ... -->`` marks a block that takes a minute or more (a real
network): ``make docs`` regenerates it like any other, and the test suite
compares it only with ``HESSCLI_SLOW_TOUR=1``.

Each command runs as a user would see it at 80 columns without color
(``COLUMNS=80 NO_COLOR=1 TERM=dumb``): in-process through Click's runner by
default (one JAX import for the whole tour), or with ``--subprocess`` through
the installed ``hesscli``. The block's output is replaced and the file rewritten
atomically. ``--check`` rewrites nothing and exits 1 when an output is stale
(compared modulo timings, versions and temporary paths: :func:`normalize`).
Commands run in the current directory, so ``--plot docs/x.png`` lands in the
repository's ``docs/`` when run by ``make docs``.

    python tools/tour.py                 # docs/tour.md and README.md
    python tools/tour.py docs/tour.md    # any markdown file
    python tools/tour.py --check README.md docs/tour.md
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ENV = {"COLUMNS": "80", "LINES": "200", "NO_COLOR": "1", "TERM": "dumb"}
BLOCK = re.compile(
    r"<!-- tour(?P<slow> slow)?: (?P<cmd>[^\n]+?) -->\n```console\n(?P<body>.*?)```\n"
    r"<!-- /tour -->", re.S
)


@dataclass(frozen=True)
class Block:
    command: str
    output: str  # what the block shows after the "$ command" line
    start: int  # span of the body in the file's text
    end: int
    slow: bool = False  # ``<!-- tour slow: ... -->``: a minute or more (a real network)


def blocks(text: str) -> list[Block]:
    """The tour blocks of a markdown text, in order."""
    found = []
    for m in BLOCK.finditer(text):
        body = m.group("body")
        first, _, rest = body.partition("\n")
        output = rest if first.strip() == f"$ {m.group('cmd').strip()}" else body
        found.append(Block(m.group("cmd").strip(), output, m.start("body"), m.end("body"),
                           slow=m.group("slow") is not None))
    return found


def run_inprocess(command: str) -> tuple[int, str]:
    """Run ``hesscli ...`` through Click's runner; (exit code, stdout + stderr)."""
    from click.testing import CliRunner

    from hesscli.cli import cli

    args = shlex.split(command)
    if not args or args[0] != "hesscli":
        raise ValueError(f"tour commands start with 'hesscli': {command!r}")
    runner = CliRunner()
    res = runner.invoke(cli, args[1:], env=ENV, catch_exceptions=False,
                        prog_name="hesscli")
    return res.exit_code, res.output


def run_subprocess(command: str) -> tuple[int, str]:
    """Run the command with the installed ``hesscli`` (slower: JAX is imported each time)."""
    args = shlex.split(command)
    exe = Path(sys.executable).parent / args[0]
    args[0] = str(exe) if exe.exists() else args[0]
    proc = subprocess.run(args, env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    return proc.returncode, proc.stdout


def shown(code: int, output: str) -> str:
    """What a tour block shows: the output, and ``[exit N]`` when N is not 0."""
    text = clean(output)
    return text + f"[exit {code}]\n" if code else text


def clean(output: str) -> str:
    """Trailing spaces off every line (Rich pads them), one final newline."""
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def normalize(output: str) -> str:
    """What may differ between two honest runs: timings, versions, temporary paths."""
    text = clean(output)
    text = re.sub(r"\b\d+(\.\d+)?\s?(s|ms|µs|us|min)\b", "<time>", text)
    text = re.sub(r"\b\d+:\d\d:\d\d\b", "<time>", text)  # progress bars' elapsed time
    text = re.sub(r"\b(hesscli|jax|jaxlib|numpy|python)( version)? \d+(\.\d+)+\S*",
                  r"\1 <version>", text)
    text = re.sub(r"(/tmp|/var/folders|/private)[^\s'\"]*", "<path>", text)
    text = re.sub(r"monitoring took \d+%", "monitoring took <share>", text)  # single runs
    text = re.sub(r"^.*monitoring share.*$",  # time shares vary from run to run
                  lambda m: re.sub(r"\s*\d+%", " <share>", m.group(0)), text, flags=re.M)
    return text


def render(text: str, outputs: list[str]) -> str:
    """``text`` with each block's output replaced (same order as :func:`blocks`)."""
    found = blocks(text)
    pieces, pos = [], 0
    for block, output in zip(found, outputs, strict=True):
        pieces.append(text[pos:block.start])
        pieces.append(f"$ {block.command}\n{clean(output)}")
        pos = block.end
    pieces.append(text[pos:])
    return "".join(pieces)


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside ``path`` and rename over it, keeping its permissions."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def process(path: Path, run: Callable[[str], tuple[int, str]], check: bool) -> list[str]:
    """Regenerate (or check) one file; returns the commands whose output was stale."""
    text = path.read_text(encoding="utf-8")
    stale, outputs = [], []
    for block in blocks(text):
        code, output = run(block.command)
        output = shown(code, output)
        outputs.append(output)
        if normalize(output) != normalize(block.output):
            stale.append(block.command)
    if not check:
        new = render(text, outputs)
        if new != text:
            atomic_write_text(path, new)
    print(f"{path}: {len(outputs)} tour block(s), {len(stale)} "
          f"{'stale' if check else 'updated'}", file=sys.stderr)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path,
                        default=[Path("docs/tour.md"), Path("README.md")])
    parser.add_argument("--check", action="store_true",
                        help="rewrite nothing; exit 1 when an output is stale")
    parser.add_argument("--subprocess", action="store_true",
                        help="run the installed hesscli instead of in-process")
    args = parser.parse_args(argv)
    if not args.subprocess:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    run = run_subprocess if args.subprocess else run_inprocess
    stale: list[str] = []
    for path in args.files:
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 2
        stale += process(path, run, args.check)
    if args.check and stale:
        for command in stale:
            print(f"stale: {command}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
