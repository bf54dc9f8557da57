"""Files hesscli writes: never partial, never lost, never written twice at once.

A full disk is simulated at the one call that writes log bytes
(``hesscli.files._write``) or at the rename of an atomic write. A run log keeps only
whole lines (a Ctrl-C mid-line included); ``--save-escape``, ``--save-point`` and
``--plot`` leave no partial file and no temporary; outputs are checked before any
training; a second run writing the same log is refused.
"""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.helpers import one_error


def full_disk(monkeypatch, free: int) -> None:
    """Let ``free`` more bytes reach the log, then fail like a full disk."""
    import hesscli.files as files

    left = [free]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done = os.write(fd, bytes(data[: left[0]]))
        left[0] -= done
        return done

    monkeypatch.setattr(files, "_write", write)


@pytest.mark.parametrize("free", [0, 700, 3000])
def test_train_log_on_a_full_disk_keeps_only_complete_lines(hess, quadratic, tmp_path,
                                                           monkeypatch, free):
    full_disk(monkeypatch, free)
    log = tmp_path / "run.jsonl"
    res = hess("train", quadratic, "--steps", "40", "--monitor-every", "5", "--out", log,
               "--no-curvature", "--format", "json")
    one_error(res, 2, "No space left on device")
    if free == 0:
        assert not log.exists()  # never a 0-byte log
    else:
        text = log.read_text()
        assert text.endswith("\n") and text.strip()
        records = [json.loads(line) for line in text.splitlines()]  # every line whole
        assert records[0]["record"] == "header"


def test_atomic_writers_leave_no_partial_file(hess, quadratic, tmp_path, monkeypatch):
    """--save-escape, --save-point and --plot on a read-only or full file system."""
    import hesscli.files as files

    def read_only(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

    monkeypatch.setattr(files.os, "replace", read_only)
    escape = tmp_path / "escape.npy"
    res = hess("analyze", "saddle", "--at", "zeros", "--save-escape", escape)
    one_error(res, 2, "Read-only file system")
    point = tmp_path / "final.npz"
    res = hess("train", quadratic, "--steps", "5", "--no-curvature", "--save-point", point)
    one_error(res, 2, "Read-only file system", progress=True)
    monkeypatch.undo()

    def no_space(fig, fh, **kw):
        fh.write(b"<svg half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    import matplotlib.figure

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", no_space)
    plot = tmp_path / "spectrum.svg"
    res = hess("spectrum", quadratic, "--plot", plot)
    one_error(res, 2, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quad.py"]  # no file, no temp


def test_outputs_checked_before_training(hess, quadratic, tmp_path):
    log = tmp_path / "run.json"
    one_error(hess("train", quadratic, "--out", log, "--save-point", log), 2,
              "--out and --save-point both name")
    one_error(hess("train", quadratic, "--out", log, "--save-point",
                   tmp_path / "missing" / "p.npz"), 2, "does not exist")
    one_error(hess("train", quadratic, "--out", log, "--save-point", tmp_path / "p.xyz"), 2,
              "--save-point")
    assert not log.exists()  # refused before the first record


def test_a_second_writer_of_one_log_is_refused(hess, quadratic, tmp_path):
    from hesscli.errors import InputError
    from hesscli.files import LineLog

    log = tmp_path / "run.jsonl"
    first = LineLog(log, "new")
    first.write('{"record": "header"}')
    with pytest.raises(InputError, match="exists"):
        LineLog(log, "new")  # created exclusively: a run that raced us is refused
    res = hess("train", quadratic, "--steps", "5", "--out", log, "--force")
    one_error(res, 2, "being written by another hesscli run")
    first.close()
    assert log.read_text() == '{"record": "header"}\n'  # the running log is intact


def test_ctrl_c_in_the_middle_of_a_log_line_leaves_no_torn_line(tmp_path, monkeypatch):
    import hesscli.files as files

    log = files.LineLog(tmp_path / "run.jsonl", "new")
    log.write('{"record": "header"}')
    calls = []

    def half_then_interrupt(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise KeyboardInterrupt
        return os.write(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(files, "_write", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        log.write('{"record": "step", "step": 1}')
    monkeypatch.undo()
    log.write('{"record": "end", "reason": "interrupted"}')
    log.close()
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert [json.loads(line)["record"] for line in lines] == ["header", "end"]

