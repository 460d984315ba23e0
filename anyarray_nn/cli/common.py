"""What every part of the command line shares: the program name, exit codes, errors, and the
checks made before any work starts."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

PROG = "anyarray-nn"
EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

EXIT_STATUS_HELP = """\
exit status:
  0    success
  1    a check failed: gradcheck's max relative error is not below --tol, or training diverged
  2    usage error: bad arguments, an unknown, missing or unreadable dataset or data file, an
       unusable backend or device, an unreadable model file, an output that cannot be
       written, or a missing optional package (matplotlib for --plot, pyarrow for Parquet)
  130  interrupted (Ctrl-C); 'train --save' first saves the last finished epoch
  141  the output was closed early (e.g. piped into head)"""

BACKENDS_HINT = f"run '{PROG} backends' to see which backends are usable here"


class UsageError(Exception):
    """A problem with what the user asked for; reported as one line, exit status 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class Interrupted(Exception):
    """Ctrl-C, after whatever could be saved was saved; the message says what; exit 130."""


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an exception's message (or of a string)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def has_module(name: str) -> bool:
    """Whether the package ``name`` is installed (without importing it)."""
    return importlib.util.find_spec(name) is not None


def check_output_path(path: str, option: str) -> None:
    """Fail before any work, not after it, when ``path`` cannot be written: a directory, a
    missing directory, or one where no file can be created (tried, not guessed)."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{option} {path!r} is a directory", "give a file name")
    if not parent.is_dir():
        raise UsageError(f"{option} {path!r}: directory {str(parent)!r} does not exist")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=f".{PROG}-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"{option} {path!r}: cannot write in directory {str(parent)!r} ({reason})",
            "choose a writable directory",
        ) from None


def refuse_existing_output(path: str | None, option: str, overwrite: bool) -> None:
    """An existing output file is replaced only with ``--overwrite`` (the rule of ``NN.save``
    and ``export``), checked before any work."""
    if path is not None and path != "-" and not overwrite and os.path.lexists(path):
        raise UsageError(f"{option} {path!r} exists", "pick another name, or pass --overwrite")


def refuse_overwriting_input(path: str, option: str, inputs: list[str | None]) -> None:
    """UsageError when the output ``path`` is one of the ``inputs`` (also through a link):
    writing it would replace the user's data with the output."""
    for source in inputs:
        if source is None or path == "-":
            continue
        try:
            same = os.path.samefile(path, source)
        except OSError:  # one of them does not exist (yet)
            same = os.path.realpath(path) == os.path.realpath(source)
        if same:
            raise UsageError(
                f"{option} {path!r} is the input file {source!r}: writing it would replace "
                "the data",
                "write to another file",
            )


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, captured output)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def progress_mode(choice: int | None) -> int:
    """``fit``'s ``verbose`` for a progress choice: 0 quiet, 2 a line per epoch, None (the
    default) a bar only when both stdout and stderr are terminals, else a line per epoch, so
    that a redirected log gets readable lines and never a bar."""
    if choice is not None:
        return choice
    return 1 if is_terminal(sys.stdout) and is_terminal(sys.stderr) else 2
