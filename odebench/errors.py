"""Exceptions that odebench raises on bad input.

Every message is one line that says what was wrong and, where there is a choice, what is valid.
The command line turns these into exit code 2 without a traceback.
"""


class OdebenchError(ValueError):
    """Base class of all input errors raised by odebench."""


class UnknownNameError(OdebenchError, KeyError):
    """A registry lookup used a name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnavailableError(OdebenchError):
    """The name is known, but its optional dependency is missing."""


class UnsupportedError(OdebenchError):
    """The combination (method, solver, option) is not supported."""


class InvalidInputError(OdebenchError):
    """Tensors or tolerances that no solver can accept."""


class MaxStepsExceeded(RuntimeError):
    """The solver hit its step budget (torchdiffeq's `max_num_steps`)."""
