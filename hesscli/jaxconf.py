"""One place that imports JAX and configures it (x64 on, CPU-friendly defaults).

Everything that needs JAX imports it through :func:`jax_module` so that
``hesscli --help`` and ``hesscli problems`` never pay for the import.
"""

from __future__ import annotations

import os
import re
import stat
from functools import cache
from typing import Any

DTYPES = ("float64", "float32")


def cache_dir() -> str | None:
    """Where compiled programs persist between runs; None when disabled.

    ``HESSCLI_CACHE_DIR`` chooses the folder, ``HESSCLI_NO_CACHE=1`` turns it off;
    the default is ``$XDG_CACHE_HOME/hesscli/jax`` (``~/.cache/hesscli/jax``).
    A CLI compiles the same few programs on every call: with the cache, a second
    ``hesscli analyze mlp`` spent 1.7 s instead of 16 s on a loaded 2-core machine.
    """
    if os.environ.get("HESSCLI_NO_CACHE", "") not in ("", "0"):
        return None
    if os.environ.get("HESSCLI_CACHE_DIR"):
        return os.environ["HESSCLI_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hesscli", "jax")


@cache
def jax_module() -> Any:
    """Import JAX with float64 enabled (and the compilation cache on) and return it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from hesscli import sigint

    with sigint.hard():  # an interrupted jaxlib import breaks it: Ctrl-C exits here
        import jax

    jax.config.update("jax_enable_x64", True)
    folder = cache_dir()
    if folder is not None:
        try:
            os.makedirs(folder, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", folder)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        except (OSError, AttributeError):
            pass  # an unwritable cache only costs speed
    return jax


def eps(dtype: str) -> float:
    """Machine epsilon of a dtype name (``float64`` or ``float32``)."""
    import numpy as np

    return float(np.finfo(dtype).eps)


_cache_reported: set[str] = set()


#: A JAX cache entry's file name: ``<module>-<sha256 hex>-cache`` (the compiled program)
#: or ``-atime`` (its 8-byte access time), as ``jax._src.lru_cache`` names them.
_ENTRY = re.compile(r"^(?P<key>(?P<module>[A-Za-z0-9_.]+)-[0-9a-f]{64})-(?P<kind>cache|atime)$")


def clear_cache(folder: str, module: str | None = None) -> int:
    """Delete the compiled-program entries of ``module`` (all modules: None) in ``folder``.

    Only files that are provably JAX cache entries are touched: a regular file
    named ``<module>-<64 hex digits>-cache``, or ``-atime`` holding exactly the 8
    bytes JAX writes there; anything else in a folder shared with other data
    (``notes-cache``, ``photo-atime``, sub-folders, links) stays. ``module`` may
    also be one whole entry key (``jit_f-<hex>``), as some JAX warnings name it.
    Returns how many files were removed.
    """
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        match = _ENTRY.match(name)
        if match is None:
            continue
        if module is not None and module not in (match["module"], match["key"]):
            continue
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                continue
            if match["kind"] == "atime" and info.st_size != 8:
                continue
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


_NAMED = re.compile(r"cache entry for '(?P<name>[^']+)'")


def cache_warning(text: str) -> str | None:
    """Turn JAX's persistent-cache warnings into one repaired, once-per-run line.

    JAX warns once per program when a cache entry cannot be read (a truncated or
    corrupt file, e.g. after a full disk or a killed run) and keeps the bad entry,
    so every later run repeats the warnings. Here the first such warning clears
    the entries of the program it names (:func:`clear_cache`: only files that are
    provably JAX's; they are rebuilt on the next compile) and says so; the rest of
    the run's cache warnings are dropped (``""``). Other text -> None.
    """
    folder = cache_dir()
    if "persistent compilation cache entry" not in text:
        return None
    if text.startswith("Error reading"):
        if "read" in _cache_reported:
            return ""
        _cache_reported.add("read")
        named = _NAMED.search(text)
        if folder is None or named is None:
            return (f"the compilation cache {folder or ''} had an unreadable entry; "
                    "HESSCLI_NO_CACHE=1 turns the cache off")
        removed = clear_cache(folder, named["name"])
        return (f"the compilation cache {folder} had an unreadable entry for "
                f"{named['name']!r}; cleared its {removed} files (rebuilt as programs "
                "compile; nothing else in the folder is touched)")
    if "write" in _cache_reported:
        return ""
    _cache_reported.add("write")
    return (f"cannot write the compilation cache {folder or ''} ({text.split(': ', 1)[-1]}); "
            "runs stay correct but compile again (HESSCLI_NO_CACHE=1 turns the cache off)")
