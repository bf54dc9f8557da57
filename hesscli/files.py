"""Files hesscli reads and writes: never half-written, never two writers, checked first.

Three mechanisms, used by every command:

- :func:`check_outputs` validates every output path a command was given before
  any work starts (folder exists, not a directory or special file, no two
  options naming the same file, a known suffix), so a long run never ends by
  refusing to save its result.
- :func:`atomic_write` writes a whole file to a temporary beside it and renames
  it into place: a full or read-only disk leaves the old file (or none), never
  a truncated one, and fails as one :class:`InputError` line.
- :class:`LineLog` streams a JSONL log: it is created exclusively (or locked
  with ``flock`` when overwriting/appending is allowed) before the first record,
  so two runs never interleave; each line goes down in whole with ``os.write``
  and, when the disk fills up, the partial line is cut off again so the file
  keeps only complete lines.

Regular-file reads with a size limit (:func:`read_regular`) keep ``--at`` away
from FIFOs and devices such as ``/dev/zero``. Nothing here imports JAX.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from hesscli.errors import InputError

_write = os.write  # the one call that puts log bytes on disk (tests simulate a full disk here)


def os_reason(exc: OSError) -> str:
    """``No space left on device`` for an OSError (its strerror, else its class name)."""
    return exc.strerror or str(exc) or type(exc).__name__


def _file_mode(path: Path) -> int:
    """The existing file's permissions, else 0666 minus the umask (as ``open`` would)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_output(path: Path | str, option: str, suffixes: Iterable[str] | None = None,
                 *, directory: bool = False) -> Path:
    """Validate one output path before any work (see :func:`check_outputs`).

    ``directory``: an existing folder is a valid target too (checkpoint formats
    such as orbax write one).
    """
    path = Path(path)
    name = str(path)
    if not name or path.name in ("", ".", ".."):
        raise InputError(f"{option} {name!r}: not a file name")
    if suffixes is not None:
        allowed = tuple(suffixes)
        if path.suffix.lower() not in allowed:
            raise InputError(f"{option} {name!r}: unknown format {path.suffix!r}; use "
                             f"{', '.join(allowed)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{option} {name!r}: folder {str(folder)!r} does not exist")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"{option} {name!r}: {os_reason(exc)}") from None
    if mode is not None and not stat.S_ISREG(mode) and not (directory and stat.S_ISDIR(mode)):
        raise InputError(f"{option} {name!r} is {_kind(mode)}; name a regular file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option} {name!r}: folder {str(folder)!r} is not writable")
    return path


def check_outputs(
    outputs: dict[str, Path | str | None], suffixes: dict[str, Iterable[str]] | None = None,
    directories: Iterable[str] = (),
) -> None:
    """Check every output of a command before it starts; ``outputs`` maps option -> path.

    Two options naming one file would let the second write destroy the first
    (``train --out run.jsonl --save-point run.jsonl``), so that is refused too.
    """
    suffixes = suffixes or {}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        checked = check_output(path, option, suffixes.get(option),
                               directory=option in tuple(directories))
        key = checked.resolve()
        if key in seen:
            raise InputError(f"{seen[key]} and {option} both name {str(path)!r}; the second "
                             "would overwrite the first; give them different files")
        seen[key] = option


def atomic_write(path: Path | str, write: Callable[[IO[Any]], Any], mode: str = "wb") -> None:
    """Write via ``write(fh)`` to a temporary file beside ``path``, then rename it.

    An OSError (disk full, read-only file system, permission) becomes one
    :class:`InputError`; the temporary is removed, so ``path`` is either the
    complete new file or untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.chmod(tmp, _file_mode(path))  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r}: {os_reason(exc)}; nothing was "
                         "written") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


class LineLog:
    """A JSONL file written one whole line at a time, by one process only.

    ``mode`` is ``"new"`` (create; refuse an existing file), ``"overwrite"``
    (truncate an existing file once it is locked) or ``"append"``. An exclusive
    ``flock`` is held until :meth:`close`; a second writer is refused at once.
    """

    def __init__(self, path: Path | str, mode: str = "new", option: str = "--out") -> None:
        self.path = Path(path)
        self.option = option
        self.lines = 0
        name = str(self.path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise InputError(f"{option} {name!r}: folder {str(folder)!r} does not exist")
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        if mode == "new":
            flags |= os.O_EXCL
        if mode == "append":
            flags |= os.O_APPEND
        try:
            self.fd = os.open(self.path, flags, 0o666)
        except FileExistsError:
            raise InputError(f"{option} {name!r} exists (another run may have just created "
                             "it); pass --force to overwrite it") from None
        except OSError as exc:
            raise InputError(f"cannot write {option} {name!r}: {os_reason(exc)}") from None
        self.created = mode == "new"
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX: O_EXCL is the only guard
            pass
        except OSError:
            os.close(self.fd)
            raise InputError(f"{option} {name!r} is being written by another hesscli run "
                             "(it holds the file's lock); wait for it or choose another "
                             "file") from None
        if mode == "overwrite":
            os.ftruncate(self.fd, 0)
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            self.close()
            raise InputError(f"{option} {name!r} is not a regular file")

    def write(self, text: str) -> None:
        """Append ``text`` (one line, newline added) whole, or not at all."""
        data = (text.rstrip("\n") + "\n").encode("utf-8")
        start = os.lseek(self.fd, 0, os.SEEK_END)
        view = memoryview(data)
        try:
            while view:
                done = _write(self.fd, view)
                if done <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[done:]
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)  # drop the torn line: only complete lines stay
            except OSError:
                pass
            kept = self.lines
            self.close()
            if kept == 0 and self.created:
                try:
                    os.unlink(self.path)  # nothing logged: no empty file left behind
                except OSError:
                    pass
                what = "nothing was kept"
            else:
                what = f"the {kept} complete lines before it are kept"
            raise InputError(f"cannot write {self.option} {str(self.path)!r}: "
                             f"{os_reason(exc)}; stopped, {what}") from None
        except BaseException:  # Ctrl-C between two partial writes: no torn line either
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                pass
            raise
        self.lines += 1

    def close(self) -> None:
        """Release the lock and close the file (idempotent)."""
        fd, self.fd = getattr(self, "fd", -1), -1
        if fd >= 0:
            os.close(fd)


def read_regular(path: Path | str, what: str, limit: int | None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else one clear InputError.

    FIFOs, devices (``/dev/zero`` behind a symlink) and directories are refused
    before they are opened, since reading them can block or never end; the size
    is checked from ``fstat`` and again while reading.
    """
    name = str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {name!r} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {name!r}: {os_reason(exc)}") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} {name!r} is {_kind(mode)}; only regular files are read")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"cannot read {what} {name!r}: {os_reason(exc)}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{what} {name!r} is not a regular file")
        size = os.fstat(fd).st_size
        if limit is not None and size > limit:
            raise InputError(_too_big(what, name, size, limit))
        data = fh.read(limit + 1 if limit is not None else -1)
    if limit is not None and len(data) > limit:
        raise InputError(_too_big(what, name, len(data), limit))
    return data


def _too_big(what: str, name: str, size: int, limit: int) -> str:
    return (f"{what} {name!r} holds {_mib(size)}, more than the {_mib(limit)} "
            "a point of this size can take; is it the right file?")


def _mib(size: int) -> str:
    return f"{size} bytes" if size < 2**20 else f"{size / 2**20:.1f} MiB"


#: what a point file may weigh (bytes) for its number of parameters
BYTES_PER_ENTRY = 64  # a number as text with its separator takes at most about 25
MIN_LIMIT = 1 << 20  # headers, whitespace and tiny points
UNKNOWN_LIMIT = 1 << 30  # no default point to size against


def size_limit(n: int | None) -> int:
    """The largest point file read for ``n`` parameters (None: unknown n).

    Proportionate to n, so that a wrong file (a log, a dataset, ``/dev/zero``
    behind a symlink) is refused at once instead of being read into memory.
    """
    return UNKNOWN_LIMIT if n is None else MIN_LIMIT + BYTES_PER_ENTRY * n
