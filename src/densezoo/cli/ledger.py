"""``ledger export``: the store's files, their digests and vouchers, optionally signed."""

from __future__ import annotations

import click

from .app import App, json_option, names_argument, pass_app
from ..units import plural


@click.group("ledger")
def ledger_group() -> None:
    """A ledger of the store you can sign once and check offline everywhere."""


@ledger_group.command("export")
@names_argument()
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              metavar="LEDGER.json", help="Where to write the ledger.")
@click.option("--key", type=click.Path(dir_okay=False), metavar="PRIVATE.pem",
              help="Sign it with this EC private key (model-signing's key method).")
@click.option("--signature", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the signature (default: the ledger's name with .sig).")
@json_option
@pass_app
def export_cmd(app: App, names, output, key, signature, as_json) -> None:
    """Write the cached files (NAMEs, or all of the store's) with size, md5, sha256 and
    who vouched for them; with --key, sign it in the OpenSSF model-signing format.

    \b
    Once, by a team lead; then in every CI job, offline:
      densezoo ledger export -o ledger.json --key lead.pem
      densezoo verify --signature ledger.sig --key lead.pub

    The signature covers every listed file's bytes and the ledger itself
    (docs/security.md, "Signed ledgers").  Never uses the network.
    """
    from pathlib import Path

    if signature and not key:
        raise click.UsageError("--signature needs --key (the private key to sign with)")
    result = app.zoo.ledger_export(names, Path(output), key=Path(key) if key else None,
                                   signature=Path(signature) if signature else None)
    if as_json:
        app.emit([f.to_dict() for f in result.files],
                 summary={"ledger": str(result.ledger),
                          "signature": str(result.signature) if result.signature else None,
                          "files": len(result.files)})
    else:
        for f in result.files:
            click.echo(f"{f.sha256}  {f.path}")
    app.say(f"wrote {result.ledger} ({plural(len(result.files), 'file')})"
            + (f", signed in {result.signature}" if result.signature else ""))


COMMANDS = (ledger_group,)
