"""``convert``: a pickle checkpoint rewritten as safetensors, proven bit-exact first."""

from __future__ import annotations

import click

from .app import App, complete_names, json_option, pass_app
from ..units import human_size


@click.command("convert")
@click.argument("target", metavar="NAME|PATH", shell_complete=complete_names)
@click.option("--to", "to", type=click.Choice(["safetensors"]), default="safetensors",
              show_default=True, help="The format to write.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="OUT",
              help="Write here (default: a NAME goes into the store as a derived file; "
                   "a PATH gets a .safetensors beside it).")
@json_option
@pass_app
def convert_cmd(app: App, target, to, output, as_json) -> None:
    """Convert a .pkl checkpoint (an artifact NAME or a file PATH) to safetensors.

    The pickle is read by densezoo's restricted loader (numpy arrays and plain
    containers only; nothing in the file runs), written with the safetensors package,
    read back and compared tensor by tensor (dtype, shape, every byte) before it is
    kept.  detectron2's metadata (__author__, matching_heuristics) and the source's
    sha256 are kept in the header.  A NAME is fetched (verified) first and its
    conversion lands in the store, reused while the source bytes are the same.

    \b
      densezoo convert R_50_FPN_s1x
      densezoo convert model_final_162be9.pkl -o model.safetensors
      densezoo config my_densepose.yaml --trained --safetensors -o cfg.yaml

    Exit 0 when converted; 9 if the pickle holds anything but weights; 1 if
    safetensors cannot hold a tensor (object or string arrays) or the round trip
    differs (nothing is written then).
    """
    result = app.zoo.convert(target, to=to, output=output)
    if as_json:
        app.emit([result.to_dict()])
        return
    how = "reused, read back exact" if result.reused else "round trip exact"
    click.echo(str(result.path))
    app.say(f"{result.tensors} tensors, {human_size(result.nbytes)} ({result.layout}) "
            f"from {result.name or result.source}, sha256 {result.source_sha256[:12]}...: "
            f"{how}")
COMMANDS = (convert_cmd,)
