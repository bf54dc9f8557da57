"""Starting the CLI: ``--help`` imports no JAX; a corrupt compilation cache is cleared once.

The cache test plants JAX-named entries (``jit_<name>-<sha256>-cache``/``-atime``)
beside files that only look like them: exactly the corrupt program's two files go.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_help_stays_light():
    code = ("import sys; from hesscli.cli import cli\n"
            "code = cli.main(['--help'], standalone_mode=False)\n"
            "print(code, 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip().endswith("0 False")


def test_corrupt_compilation_cache_is_cleared_once(tmp_path, monkeypatch):
    from hesscli import jaxconf

    monkeypatch.setenv("HESSCLI_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HESSCLI_NO_CACHE", raising=False)  # hermetic: the caller may set it
    monkeypatch.setattr(jaxconf, "_cache_reported", set())
    key = "0123456789abcdef" * 4  # a SHA-256 in hex, as JAX names entries
    (tmp_path / f"jit_f-{key}-cache").write_bytes(b"\x00garbage")
    (tmp_path / f"jit_f-{key}-atime").write_bytes(b"\x00" * 8)
    (tmp_path / f"jit_g-{key}-cache").write_bytes(b"\x00garbage")  # another program: kept
    user = {"notes.txt": b"keep me", "jit_f-abc-cache": b"mine", "photo-cache": b"x",
            f"jit_f-{key}-atime.bak": b"x", "jit_f-0000-atime": b"\x00" * 8}
    for name, data in user.items():
        (tmp_path / name).write_bytes(data)
    text = "Error reading persistent compilation cache entry for 'jit_f': XlaRuntimeError: bad"
    first = jaxconf.cache_warning(text)
    assert first is not None and "cleared its 2 files" in first
    assert jaxconf.cache_warning(text) == ""  # the other 21 warnings of the run: dropped
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*user, f"jit_g-{key}-cache"])
    assert all((tmp_path / name).read_bytes() == data for name, data in user.items())
    assert jaxconf.cache_warning("something else") is None

