"""Exceptions that odebench raises on bad input, and how an error becomes one line.

Every message is one line that says what was wrong and, where there is a choice, what is valid.
The command line turns these into exit code 2 without a traceback.
"""


class OdebenchError(ValueError):
    """Base class of all input errors raised by odebench."""


class UnknownNameError(OdebenchError, KeyError):
    """A registry lookup used a name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(OdebenchError):
    """A registry already holds an entry of that name."""


class UnavailableError(OdebenchError):
    """The name is known, but its optional dependency is missing."""


class UnsupportedError(OdebenchError):
    """The combination (method, solver, option) is not supported."""


class InvalidInputError(OdebenchError):
    """Tensors, tolerances, files or options that cannot be used."""


class ToleranceWarning(UserWarning):
    """A tolerance finer than the dtype resolves: the solve runs (as torchdiffeq's does), and the
    warning is kept in the record, since what the solver then does is a finding."""


class MaxStepsExceeded(RuntimeError):
    """The solver hit its step budget (torchdiffeq's `max_num_steps`)."""


def first_line(text: object, max_chars: int = 500) -> str:
    """The first non-empty line of `text` (the last one of a traceback), at most `max_chars`."""
    if not isinstance(text, str) or not text.strip():
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = (lines[-1] if lines[0].startswith("Traceback") else lines[0]).strip()
    return line if len(line) <= max_chars else line[: max_chars - 1] + "…"


def describe(exc: BaseException, max_chars: int = 500) -> str:
    """``Class: first line of the message``, kept short for tables."""
    return f"{type(exc).__name__}: {first_line(str(exc), max_chars)}"
