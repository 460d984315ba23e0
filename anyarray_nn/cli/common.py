"""What every part of the command line shares: the program name, exit codes, UsageError."""

from __future__ import annotations

PROG = "anyarray-nn"
EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

EXIT_STATUS_HELP = """\
exit status:
  0    success
  1    a check failed: gradcheck's max relative error is not below --tol, or training diverged
  2    usage error: bad arguments, an unknown or missing dataset, an unusable backend or
       device, an unreadable model file, or a missing optional package (matplotlib for --plot)
  130  interrupted (Ctrl-C)
  141  the output was closed early (e.g. piped into head)"""

BACKENDS_HINT = f"run '{PROG} backends' to see which backends are usable here"


class UsageError(Exception):
    """A problem with what the user asked for; reported as one line, exit status 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an exception's message (or of a string)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
