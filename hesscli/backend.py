"""Starting JAX's backend, with the environment's mistakes told as input errors.

Two settings outside hesscli decide whether JAX can start at all:

- ``JAX_PLATFORMS`` naming a platform this machine cannot start (``cuda``
  without a GPU plugin, ``tpu`` without libtpu): JAX raises a bare
  ``AssertionError`` or a ``RuntimeError`` the first time anything touches a
  device — usually inside the objective file's ``jnp.array(...)``, which made
  it look like the objective's failure (exit 3).
- ``XLA_FLAGS`` with a flag this XLA does not know: XLA's native flag parser
  ends the whole process (exit 1 and a native log line) the moment the backend
  starts, before Python can catch anything.

:func:`start_backend` is called before an objective file runs. It starts the
backend first in a forked child when ``XLA_FLAGS`` is set (the one way to see
the native exit without dying of it: ~0.1 s, only then), then in this
process, and turns either failure into one :class:`~hesscli.errors.InputError`
naming the variable. A backend already running (a Python caller's, a test
session's) or a multi-process run (``jax.distributed``, whose backend must not
start in a child) is left alone.
"""

from __future__ import annotations

import os
from typing import Any

from hesscli.errors import InputError

XLA_UNKNOWN = "Unknown flag in XLA_FLAGS"


def _running(jax: Any) -> bool:
    """Whether JAX's backend has started, or a distributed run owns it."""
    try:
        from jax._src import distributed, xla_bridge
    except ImportError:  # pragma: no cover - private layout changed: trust JAX's own errors
        return True
    if getattr(getattr(distributed, "global_state", None), "client", None) is not None:
        return True
    return bool(getattr(xla_bridge, "_backends", None))


def _flags_in_child(jax: Any) -> str | None:
    """Start the backend in a forked child; the native message when XLA_FLAGS killed it."""
    if not hasattr(os, "fork"):
        return None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: start the backend with stderr into the pipe, then leave
        code = 0
        try:
            os.dup2(write, 2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            jax.devices()
        except BaseException:  # noqa: BLE001 - the parent reports it in its own words
            code = 3
        os._exit(code)
    os.close(write)
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        while len(chunks) < 64:
            chunk = pipe.read(4096)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 3):
        return None
    line = next((ln for ln in text.splitlines() if XLA_UNKNOWN in ln), None)
    if line is None:
        return None
    return line[line.index(XLA_UNKNOWN) + len(XLA_UNKNOWN):].lstrip(": ").strip()


def start_backend() -> None:
    """Start JAX's backend now, or raise an input error naming the setting that stops it."""
    from hesscli.jaxconf import jax_module

    jax = jax_module()
    if _running(jax):
        return
    flags = os.environ.get("XLA_FLAGS", "").strip()
    if flags:
        unknown = _flags_in_child(jax)
        if unknown is not None:
            raise InputError(
                f"XLA_FLAGS holds a flag this XLA (jaxlib {_jaxlib()}) does not know: "
                f"{unknown[:200]}; remove it from XLA_FLAGS (XLA would end the process)")
    try:
        jax.devices()
    except (RuntimeError, AssertionError, ValueError) as exc:
        platforms = os.environ.get("JAX_PLATFORMS", "")
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else \
            "no backend could be initialized"
        where = f"JAX_PLATFORMS={platforms}" if platforms else "this machine"
        raise InputError(
            f"JAX cannot start a backend for {where}: {detail[:300]}; set JAX_PLATFORMS=cpu "
            "(or unset it to let JAX choose), or install the plugin for that platform "
            "(e.g. pip install 'jax[cuda12]')") from None


def _jaxlib() -> str:
    try:
        from importlib.metadata import version

        return version("jaxlib")
    except Exception:  # noqa: BLE001 - only for the message
        return "?"
