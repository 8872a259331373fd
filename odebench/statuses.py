"""Every status a record can have, in a module of its own: the command line names them in its
help without importing the jobs (which import torch).

"ok" is the only one with complete measurements; "underflow" is a step size driven below the
resolution of the time variable (the solver's controller gave up, typically on a stiff or
blowing-up problem), whichever integrator raised it; "memory" a case that asked for more memory
than its limit (`--memory-limit`) or the device has.
"""

STATUSES = ("ok", "error", "nan", "underflow", "max_steps", "memory", "timeout", "crashed")

__all__ = ["STATUSES"]
