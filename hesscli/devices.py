"""Devices, processes and the device mesh the sharded curvature backend runs on.

hesscli uses JAX's SPMD machinery as is: one :class:`jax.sharding.Mesh` with a
single axis named :data:`AXIS` (``"devices"``) over the selected devices. The
batch axis of an objective file's ``data`` is split over it, and so is any
parameter axis that the file's ``param_sharding`` names (FSDP/ZeRO-3 style:
data and parameters share the one axis). Several hosts join through
``jax.distributed.initialize``, which must run before JAX touches a device;
:func:`start_processes` does that, and :func:`select` then builds the mesh.

``--devices N`` counts devices *per process* (the same command runs on every
host), ``all`` takes every local device; the mesh holds N × processes devices,
ordered process by process. Only process 0 prints and writes files
(:func:`is_primary`).

Nothing here imports click; errors are :class:`~hesscli.errors.InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hesscli.errors import InputError
from hesscli.jaxconf import jax_module

AXIS = "devices"

#: Environment variables read (by the CLI) when the options are not given.
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


@dataclass(frozen=True)
class Parallel:
    """Who takes part: ``devices`` in the mesh (all processes), ``processes``, this process.

    ``mesh`` is the :class:`jax.sharding.Mesh` (None on the single-device path).
    """

    devices: int = 1
    processes: int = 1
    local_devices: int = 1
    process_index: int = 0
    platform: str = "cpu"
    mesh: Any = field(default=None, compare=False, repr=False)

    @property
    def sharded(self) -> bool:
        return self.mesh is not None

    def describe(self) -> str:
        """``4 cpu devices, 1 process`` (for tables)."""
        dev = f"{self.devices} {self.platform} device{'s' if self.devices != 1 else ''}"
        proc = f"{self.processes} process{'es' if self.processes != 1 else ''}"
        return f"{dev}, {proc}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (the ``meta.parallel`` block and top-level fields)."""
        return {
            "devices": self.devices,
            "processes": self.processes,
            "local_devices": self.local_devices,
            "process_index": self.process_index,
            "platform": self.platform,
            "mesh_axis": AXIS if self.sharded else None,
        }


def parse_devices(text: str | int | None) -> int | None:
    """``"all"`` -> None (every local device); ``"N"`` -> N ≥ 1; else InputError."""
    if text is None:
        return 1
    if isinstance(text, int):
        value = text
    else:
        word = str(text).strip().lower()
        if word == "all":
            return None
        try:
            value = int(word)
        except ValueError:
            raise InputError(
                f"--devices {text!r}: expected a positive integer or 'all'"
            ) from None
    if value < 1:
        raise InputError(f"--devices {value}: expected a positive integer or 'all'")
    return value


_started: dict[str, Any] = {}


def start_processes(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    initialize: Any = None,
) -> bool:
    """Join a multi-process run (``jax.distributed.initialize``) when asked to.

    Nothing happens when all three settings are None (a single process). The
    settings are checked first (``host:port``, ``0 ≤ process_id < num_processes``)
    so that a typo fails fast instead of waiting for a coordinator.
    ``initialize`` replaces ``jax.distributed.initialize`` in tests. Returns
    True when the distributed system was (already) initialized.
    """
    jax = jax_module()  # x64 on before anything else
    if coordinator is None and num_processes is None and process_id is None:
        return bool(_started)
    check_distributed(coordinator, num_processes, process_id)
    key = f"{coordinator}|{num_processes}|{process_id}"
    if _started:
        if key not in _started:
            raise InputError("jax.distributed is already initialized with other settings")
        return True
    init = initialize or jax.distributed.initialize
    try:
        init(coordinator_address=coordinator, num_processes=num_processes,
             process_id=process_id)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - JAX reports setup problems as RuntimeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"could not join the multi-process run (coordinator {coordinator}, "
            f"{num_processes} processes, process {process_id}): {first[:200]}"
        ) from exc
    _started[key] = True
    return True


def joined() -> bool:
    """True when this process joined a multi-process run (:func:`start_processes`)."""
    return bool(_started)


def check_distributed(
    coordinator: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """Validate ``--coordinator host:port --num-processes N --process-id I``."""
    missing = [
        name for name, value in (("--coordinator", coordinator),
                                 ("--num-processes", num_processes),
                                 ("--process-id", process_id))
        if value is None
    ]
    if missing:
        raise InputError(
            f"a multi-process run needs --coordinator, --num-processes and --process-id "
            f"(or {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID}); "
            f"missing {', '.join(missing)}"
        )
    assert coordinator is not None and num_processes is not None and process_id is not None
    host, sep, port = coordinator.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--coordinator {coordinator!r}: expected host:port, e.g. host0:1234")
    if num_processes < 1:
        raise InputError(f"--num-processes {num_processes}: expected a positive integer")
    if not 0 <= process_id < num_processes:
        raise InputError(
            f"--process-id {process_id}: expected 0 ≤ id < --num-processes ({num_processes})"
        )


def select(devices: int | None) -> Parallel:
    """The mesh for ``--devices`` (per process; None = all local devices).

    One device in one process is today's single-device path (``mesh`` None).
    """
    jax = jax_module()
    local = jax.local_devices()
    processes = jax.process_count()
    platform = local[0].platform
    per_process = len(local) if devices is None else devices
    if per_process > len(local):
        hint = (
            f"; on CPU, start with XLA_FLAGS=--xla_force_host_platform_device_count="
            f"{per_process} to split the CPU into {per_process} devices"
            if platform == "cpu" else ""
        )
        raise InputError(
            f"--devices {per_process}: only {len(local)} {platform} device"
            f"{'s are' if len(local) != 1 else ' is'} available to this process{hint}"
        )
    total = per_process * processes
    if total == 1:
        return Parallel(1, 1, 1, 0, platform, None)
    by_process: dict[int, list[Any]] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    chosen = [d for p in sorted(by_process) for d in by_process[p][:per_process]]
    import numpy as np

    mesh = jax.sharding.Mesh(np.array(chosen), (AXIS,))
    return Parallel(total, processes, per_process, jax.process_index(), platform, mesh)


def is_primary() -> bool:
    """True in process 0 (the one that prints and writes files), and without JAX started."""
    if not _started:
        return True
    return int(jax_module().process_index()) == 0
