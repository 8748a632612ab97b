"""The ``pa-ci`` command line: thin click commands over the library.

Each command parses its options, calls one library function, and prints either readable text or,
with ``--json``, exactly one JSON object on stdout. Progress goes to stderr. Every failure is one
``error: ...`` line on stderr, with click's exit statuses: 2 for a usage error (an unknown
option, a value out of its range: click's checks and :class:`~pa_ci.errors.ParameterError`), 1
for a runtime error (any other :class:`~pa_ci.errors.PaCiError`: a missing or corrupt file, a run
folder in use, a full disk, ...), 130 when interrupted; warnings are ``warning: ...`` lines.
``--quiet`` (before or after the command name) drops the progress lines, not warnings or errors.
``--json`` output is strict JSON: a value that is not a finite number is ``null``.
"""
from __future__ import annotations

import os
import sys
import warnings

import click

from ..errors import PaCiError, ParameterError
from . import audio_data, model, pruning, sweep  # noqa: F401 - importing registers the commands
from ._common import (EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE, Progress, _QUIET_HELP,  # noqa: F401
                      _emit, _set_quiet, _showwarning, cli, strict_json)

def _add_quiet_options(group: click.Group) -> None:
    """``--quiet`` after the command name too (``pa-ci prune ... --quiet``)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _add_quiet_options(command)
        command.params.append(click.Option(["-q", "--quiet"], is_flag=True, expose_value=False,
                                           is_eager=True, callback=_set_quiet, help=_QUIET_HELP))


_add_quiet_options(cli)


# ----------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the click group and maps every failure to one ``error:`` line."""
    warnings.showwarning = _showwarning
    debug = bool(os.environ.get("PA_CI_DEBUG"))
    threads = os.environ.get("NUMBA_NUM_THREADS")
    if threads is not None and not (threads.strip().isdigit() and int(threads) >= 1):
        _fail(f"environment variable NUMBA_NUM_THREADS={threads!r}; expected a positive integer "
              "(threads for the compiled kernels) or unset it", EXIT_USAGE)
    _sigterm_as_interrupt()
    try:
        cli.main(args=argv, prog_name="pa-ci", standalone_mode=False)
    except ParameterError as exc:
        _fail(str(exc), EXIT_USAGE)
    except PaCiError as exc:
        _fail(str(exc), EXIT_RUNTIME)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        _fail(exc.format_message().replace("\n", " "), EXIT_USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), exc.exit_code or EXIT_RUNTIME)
    except OSError as exc:  # an OS refusal that no layer below named: still one clear line
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{(exc.strerror or type(exc).__name__).lower()} ({type(exc).__name__})")
    except Exception as exc:  # a bug: still one line, the traceback on request
        if debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set PA_CI_DEBUG=1 for the traceback)")
    sys.exit(0)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (``kill``) stops a command like Ctrl-C everywhere: one ``error: interrupted`` line
    and status 130 (training defers both to the end of its iteration and checkpoints there)."""
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):  # noqa: ANN001
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, handler)


def _fail(message: str, status: int = EXIT_RUNTIME) -> None:
    click.echo(f"error: {message.splitlines()[0] if message else 'failed'}", err=True)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
