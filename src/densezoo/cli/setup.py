"""``doctor`` and ``completion``: checking and wiring up an installation."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_FAILURE, EXIT_OK
from ..printable import printable
from .app import App, json_option, pass_app


@click.command("doctor")
@click.option("--no-probe", is_flag=True, help="Do not contact the origin hosts and mirrors.")
@json_option
@pass_app
def doctor_cmd(app: App, no_probe, as_json) -> None:
    """Check the setup: versions, cache dir (writable, free space), proxies, CA bundle,
    manifests, where each setting comes from, and which origin hosts and mirrors answer
    (one HEAD each, 3 s timeout, in parallel; not with --offline or --no-probe).

    Exit 1 if a check fails (an unwritable cache, a host that does not answer)."""
    report = app.zoo.doctor(probe=not no_probe, flags=app.flags())
    if as_json:
        app.emit([c.to_dict() for c in report.checks],
                 exit_code=EXIT_OK if report.ok else EXIT_FAILURE)
    else:
        width = max(len(c.name) for c in report.checks)
        for c in report.checks:
            click.echo(f"{c.word:<4}  {printable(c.name):<{width}}  {printable(c.detail)}")
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_cmd(shell) -> None:
    """Print the completion script: eval "$(densezoo completion bash)" in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    from .app import cli

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "densezoo", "_DENSEZOO_COMPLETE").source())


COMMANDS = (doctor_cmd, completion_cmd)
