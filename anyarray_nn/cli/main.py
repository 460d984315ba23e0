"""The entry point: parse, run a command, turn every failure into one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from ..backend import BackendUnavailableError
from ..datasets import DatasetNotFoundError
from ..distributed import DistributedError
from ..io import ModelFileError
from ..tabular import DataFileError
from ..training import TrainingDivergedError
from .common import (
    BACKENDS_HINT,
    EXIT_BROKEN_PIPE,
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    Interrupted,
    UsageError,
    first_line,
)
from .options import build_parser
from .train import DEMO_DEFAULTS


def _fail(
    message: str, hint: str | None = None, status: int = EXIT_USAGE, command: str | None = None
) -> int:
    """Print ``anyarray-nn[ COMMAND]: error: <first line of message> (<hint>)``; return status."""
    text = first_line(message)
    if hint:
        text = f"{text.rstrip('.')} ({hint})"
    prog = PROG if command is None else f"{PROG} {command}"
    print(f"{prog}: error: {text}", file=sys.stderr)
    return status


def _run(args: argparse.Namespace) -> int:
    def fail(exc: BaseException, hint: str | None = None, status: int = EXIT_USAGE) -> int:
        return _fail(str(exc), hint, status, args.command)

    try:
        return args.handler(args)
    except (UsageError, DataFileError) as exc:
        return fail(exc, exc.hint)
    except Interrupted as exc:
        print(f"{PROG} {args.command or 'demo'}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DistributedError as exc:
        status = EXIT_INTERRUPTED if exc.interrupted else EXIT_CHECK_FAILED
        return fail(exc, "every rank stopped; the last checkpoint rank 0 wrote is intact", status)
    except TrainingDivergedError as exc:
        reason = first_line(exc).split(". ")[0]  # the library's own advice names fit's arguments
        return fail(reason, "nothing saved; lower --lr, or try --clip-norm 1", EXIT_CHECK_FAILED)
    except BackendUnavailableError as exc:
        return fail(exc, BACKENDS_HINT)
    except ModelFileError as exc:
        return fail(exc, f"was it written by '{PROG} train --save' or net.save?")
    except DatasetNotFoundError as exc:
        return fail(exc)
    except ImportError as exc:
        return fail(exc, "install the missing optional package")
    except BrokenPipeError:
        raise
    except (ValueError, OSError) as exc:
        return fail(exc)


#: Modules imported before the arguments are parsed (comma-separated), so that the components
#: they register (activations, optimizers, losses, backends, ...) are valid choices. An entry is
#: a module name, found on the usual import path (never the current directory for the console
#: script: a file there that shadows a module would run), or the path of a ``.py`` file, e.g.
#: ``./my_components.py``, which is loaded from exactly that file.
PLUGINS_ENV = "ANYARRAY_NN_PLUGINS"


def _import_plugins() -> None:
    for entry in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            _import_plugin(entry)
        except Exception as exc:  # any failure in a user's module: one line, exit 2
            raise UsageError(
                f"{PLUGINS_ENV} names {entry!r}, which failed to import "
                f"({type(exc).__name__}: {first_line(exc)})",
                _plugin_hint(entry),
            ) from exc


def _import_plugin(entry: str) -> None:
    """Import a module by name, or load a ``.py`` file by path (as the module of its stem)."""
    if not (entry.endswith(".py") or os.sep in entry or "/" in entry):
        importlib.import_module(entry)
        return
    path = os.path.abspath(entry)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path}")
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # components pickle and load by their module's name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _plugin_hint(entry: str) -> str:
    local = f"{entry}.py"
    if "/" not in entry and not entry.endswith(".py") and os.path.isfile(local):
        return (
            f"the current directory is not searched for modules; to load {local} from it, "
            f"write {PLUGINS_ENV}=./{local}"
        )
    return "check the module name and PYTHONPATH, or give the path of a .py file"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        _import_plugins()
    except UsageError as exc:
        return _fail(str(exc), exc.hint)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is not None:
        given = [n for n in DEMO_DEFAULTS if getattr(args, "demo_" + n) is not None]
        if given:
            options = ", ".join(f"--{n}" for n in given)
            return _fail(
                f"{options} before the command {args.command!r} only applies to the demo",
                f"write it after '{args.command}'",
                command=args.command,
            )
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush at exit
    does not raise again (the recipe of Python's signal module documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in tests)
        pass
