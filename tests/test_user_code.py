"""errors.user_code: the one wrapper around calls of the user's functions.

A HesscliError passes unchanged (it already carries its message and exit code);
any other exception becomes an ObjectiveError (exit 3) whose message names what
was called and the exception, with the original as ``__cause__``; Ctrl-C and
``sys.exit`` are not the user's function failing unless the caller says so.
"""

from __future__ import annotations

import pytest

from hesscli.errors import (
    CheckFailed,
    HesscliError,
    InputError,
    ObjectiveError,
    describe_exception,
    user_code,
)


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize("exc", [InputError("bad -p"), ObjectiveError("not a scalar"),
                                 CheckFailed("failed")])
def test_a_hesscli_error_passes_unchanged(exc: HesscliError) -> None:
    with pytest.raises(type(exc)) as info, user_code("f.py: objective"):
        _raise(exc)
    assert info.value is exc
    assert str(info.value) == str(exc)
    assert info.value.__cause__ is None


def test_another_exception_becomes_an_objective_error_naming_the_call() -> None:
    original = ValueError("shapes (3,) and (4,) do not match")
    with pytest.raises(ObjectiveError) as info, user_code("f.py: init(key)"):
        _raise(original)
    assert info.value.__cause__ is original
    assert info.value.exit_code == 3
    # the message as every site wrote it: "<what> raised <Type: text (at file:line)>"
    message = str(info.value)
    assert message == f"f.py: init(key) raised {describe_exception(original)}"
    assert message.startswith("f.py: init(key) raised ValueError: shapes (3,) and (4,) "
                              "do not match")


def test_the_text_after_the_exception() -> None:
    with pytest.raises(ObjectiveError) as info, user_code("d.py: batches()", " at batch 4"):
        _raise(ZeroDivisionError("division by zero"))
    assert str(info.value).startswith("d.py: batches() raised ZeroDivisionError: "
                                      "division by zero")
    assert str(info.value).endswith(" at batch 4")


def test_an_exception_without_text_is_named_by_its_type() -> None:
    with pytest.raises(ObjectiveError) as info, user_code("f.py: objective"):
        _raise(RuntimeError())
    assert str(info.value).startswith("f.py: objective raised RuntimeError")


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3)])
def test_ctrl_c_and_sys_exit_are_not_swallowed(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as info, user_code("f.py: objective"):
        _raise(exc)
    assert info.value is exc


def test_sys_exit_is_the_users_failure_when_the_caller_says_so() -> None:
    original = SystemExit(5)
    with pytest.raises(ObjectiveError) as info, \
            user_code("f.py:objective", catch=(Exception, SystemExit)):
        _raise(original)
    assert info.value.__cause__ is original
    assert str(info.value).startswith("f.py:objective raised SystemExit: 5")
    # Ctrl-C still passes
    with pytest.raises(KeyboardInterrupt), user_code("f.py", catch=(Exception, SystemExit)):
        _raise(KeyboardInterrupt())


def test_a_block_that_succeeds_returns_its_value() -> None:
    def call() -> float:
        with user_code("f.py: objective"):
            return 1.5
    assert call() == 1.5
