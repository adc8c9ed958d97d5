"""The ``densezoo`` command: parse arguments, call the API, render the results.

One module per command group (``browse``: list/info/fetch/path, ``check``:
verify/scan/pin, ``cache``, ``share``: export/mirror/bundle/import, ``setup``:
doctor/completion), one for rendering, and ``app`` for the root group.  This
module wires them together and maps every failure to one stderr line and a
distinct exit code (see ``app.EXIT_CODES``).
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
import warnings

import click

from ..errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, DensezooError, DensezooWarning
from ..settings import debug
from . import browse, cache, check, configs, setup, share
from .app import add_global_options, cli
from ..urls import redact_text
from .render import one_line

for _module in (browse, check, configs, cache, share, setup):
    for _command in _module.COMMANDS:
        add_global_options(_command)
        cli.add_command(_command)

__all__ = ["cli", "main"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and Kubernetes send): handled like Ctrl-C, exit 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _interrupted(e: BaseException) -> None:
    """Partials are kept and markers released by the code unwinding; say so once."""
    term = isinstance(e, Terminated)
    click.echo(f"error: {'terminated' if term else 'interrupted'}; partial downloads are kept "
               "and resume next time", err=True)
    sys.exit(143 if term else 130)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, mapping every error to one stderr line and its exit code."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with warnings.catch_warnings():
            # The CLI prints each result's warnings itself; the Python warnings the API
            # issues for library callers (events.py) would say the same twice.
            warnings.simplefilter("ignore", DensezooWarning)
            _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    try:
        rv = cli.main(args=argv, prog_name="densezoo", standalone_mode=False)
    except DensezooError as e:
        if debug():
            traceback.print_exc()
        click.echo(f"error: {one_line(e)}", err=True)
        for line in e.details:
            click.echo(f"  {redact_text(line)}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code if e.exit_code else EXIT_USAGE)
    except click.exceptions.Abort as e:
        # click turns a KeyboardInterrupt into Abort; the cause tells Ctrl-C from "no".
        if isinstance(e.__cause__, KeyboardInterrupt):
            _interrupted(e.__cause__)
        click.echo("error: aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt as e:
        _interrupted(e)
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug():
            traceback.print_exc()
        click.echo(f"error: unexpected {type(e).__name__}: {e} "
                   "(hint: rerun with DENSEZOO_DEBUG=1 and report the traceback)", err=True)
        sys.exit(EXIT_FAILURE)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)
