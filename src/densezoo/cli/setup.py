"""``doctor`` and ``completion``: checking and wiring up an installation."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_FAILURE
from .app import App, json_option, pass_app
from .render import emit_json


@click.command("doctor")
@json_option
@pass_app
def doctor_cmd(app: App, as_json) -> None:
    """Check the setup: versions, cache dir (writable, free space), proxies, CA bundle, manifests."""
    report = app.zoo.doctor()
    if as_json:
        emit_json(report.to_dict())
    else:
        for c in report.checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<14} {c.detail}")
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
