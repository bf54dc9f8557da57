"""What the commands share beyond the API: joining a multi-process run, and output.

Loading, the backend and the analyses are the library's (:mod:`hesscli.api`);
this module holds only what belongs to a command-line process: ``--devices``
and ``jax.distributed`` start-up, the fd-1 redirect, and printing the result
(JSON or the Rich table) from process 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hesscli.jaxconf import jax_module


def start(
    devices: str, coordinator: str | None, num_processes: int | None, process_id: int | None
) -> int | None:
    """Check ``--devices`` and join a multi-process run; call before loading the objective.

    Returns the devices per process (None = all local ones). ``jax.distributed``
    must be initialized before JAX touches a device, hence before the objective
    file (which builds arrays) is imported.
    """
    from hesscli.devices import parse_devices, start_processes

    wanted = parse_devices(devices)
    if start_processes(coordinator, num_processes, process_id):
        if jax_module().process_count() > 1:
            native_stdout_to_stderr()
    return wanted


def native_stdout_to_stderr() -> None:
    """Send what native libraries write to file descriptor 1 to stderr instead.

    The CPU collectives (Gloo) print connection messages straight to fd 1,
    which would break "exactly one JSON document on stdout". Python's
    Reports keep the real stdout (a duplicate of the old fd 1).
    """
    import os

    from hesscli.render.streams import (
        replace_report_stream,
        report_stream,
        stdout_fd_redirected,
    )

    if stdout_fd_redirected():
        return  # already done for the whole command
    old = report_stream()
    old.flush()
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    replace_report_stream(os.fdopen(saved, "w", encoding=getattr(old, "encoding", None)
                                    or "utf-8", buffering=1))


def emit(doc: dict[str, Any], fmt: str, table: Callable[[Any], None]) -> None:
    """Print the command's result: the JSON document, or ``table(console)``.

    Only process 0 prints; in a multi-process run the others computed alongside it.
    """
    if not primary():
        return
    from hesscli import sigint

    sigint.check()  # a Ctrl-C that a callback swallowed: no result, exit 130
    if fmt == "json":
        from hesscli.render.jsonout import dump

        dump(doc)
    else:
        from hesscli.render.console import stdout_console

        table(stdout_console())


def primary() -> bool:
    """True in the process that prints and writes files (process 0)."""
    from hesscli import devices

    return devices.is_primary()
