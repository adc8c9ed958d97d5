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
from .app import cli
from ..urls import redact_text
from .render import emit_json, envelope, label, one_line, shown

# Each command's module, imported when the command is used (app.LazyGroup).
cli.lazy = {
    **dict.fromkeys(("list", "info", "fetch", "path"), "browse"),
    **dict.fromkeys(("verify", "scan", "pin"), "check"),
    "config": "configs", "cache": "cache",
    **dict.fromkeys(("export", "mirror", "bundle", "import"), "share"),
    **dict.fromkeys(("doctor", "completion"), "setup"),
    **dict.fromkeys(("manifest", "settings", "adopt"), "authoring"),
    **dict.fromkeys(("check", "identify"), "weights"),
    "convert": "convert",
    "ledger": "ledger",
}

__all__ = ["cli", "main"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and Kubernetes send): handled like Ctrl-C, exit 143."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM in a command that downloads nothing (``verify``): what the
    command was and what it leaves, said instead of the note about partial downloads."""

    def __init__(self, command: str, leaves: str) -> None:
        super().__init__(command)
        self.command, self.leaves = command, leaves


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _interrupted(e: BaseException) -> None:
    """Partials are kept and markers released by the code unwinding; say so once (or
    what an ``Interrupted`` command leaves)."""
    term = isinstance(e, Terminated) or isinstance(e.__cause__, Terminated)
    how = "terminated" if term else "interrupted"
    if isinstance(e, Interrupted):
        click.echo(f"{label('error')} {e.command} {how}; {e.leaves}", err=True)
    else:
        click.echo(f"{label('error')} {how}; partial downloads are kept and resume next "
                   "time", err=True)
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


def _json_command(args: list[str]) -> str | None:
    """With ``--json`` among the arguments: the command's name (e.g. "cache ls"), for the
    error envelope of a failure that ended the command before it could answer."""
    if "--json" not in args[: args.index("--") if "--" in args else len(args)]:
        return None
    words: list[str] = []
    group: click.Command = cli
    for token in args:
        sub = group.get_command(None, token) if isinstance(group, click.Group) else None  # type: ignore[arg-type]
        if sub is not None:
            words.append(token)
            group = sub
        elif words and not isinstance(group, click.Group):
            break
    return " ".join(words)


def _name_of(error: DensezooError) -> str | None:
    name = getattr(error, "name", None)
    return name if isinstance(name, str) else None


def _json_error(args: list[str], error: "dict | DensezooError", exit_code: int) -> None:
    command = _json_command(args)
    if command is not None:
        errors = [error]
        if isinstance(error, DensezooError):
            from ..results import error_record

            # A combined error (every unknown name at once) lists each name on its own.
            parts = getattr(error, "errors", None) or [error]
            errors = [error_record(e, _name_of(e)) for e in parts]
        emit_json(envelope(command, errors=errors, exit_code=exit_code))


def _show_usage_error(e: click.ClickException) -> None:
    """click's own message, with the same coloured ``error:`` as every other error on a
    terminal (piped or NO_COLOR: click's text, unchanged)."""
    ctx = getattr(e, "ctx", None)
    if label("error") == "error:" or not isinstance(e, click.UsageError) or ctx is None:
        e.show()
        return
    click.echo(ctx.get_usage(), err=True)
    names = ctx.help_option_names
    click.echo(f"Try '{ctx.command_path} {'--help' if '--help' in names else names[0]}' "
               "for help.\n", err=True)
    click.echo(f"{label('error')} {e.format_message()}", err=True)


def _run(argv: list[str] | None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = cli.main(args=args, prog_name="densezoo", standalone_mode=False)
    except DensezooError as e:
        if debug():
            traceback.print_exc()
        click.echo(f"{label('error')} {one_line(e)}", err=True)
        for line in e.details:
            click.echo(f"  {shown(line)}", err=True)
        _json_error(args, e, e.exit_code)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        _show_usage_error(e)
        code = e.exit_code if e.exit_code else EXIT_USAGE
        _json_error(args, {"name": None, "type": "UsageError", "exit_code": code,
                           "message": redact_text(e.format_message()),
                           "hint": "see --help"}, code)
        sys.exit(code)
    except click.exceptions.Abort as e:
        # click turns a KeyboardInterrupt into Abort; the cause tells Ctrl-C from "no".
        if isinstance(e.__cause__, KeyboardInterrupt):
            _interrupted(e.__cause__)
        click.echo(f"{label('error')} aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt as e:
        _interrupted(e)
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug():
            traceback.print_exc()
        click.echo(f"{label('error')} unexpected {type(e).__name__}: {shown(e)} "
                   "(hint: rerun with DENSEZOO_DEBUG=1 and report the traceback)", err=True)
        _json_error(args, {"name": None, "type": type(e).__name__, "exit_code": EXIT_FAILURE,
                           "message": redact_text(str(e)),
                           "hint": "rerun with DENSEZOO_DEBUG=1 and report the traceback"},
                    EXIT_FAILURE)
        sys.exit(EXIT_FAILURE)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)
